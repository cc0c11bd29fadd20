-- POST a fixed JSON body from the environment (BODY).
local body = os.getenv("BODY")
request = function()
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
