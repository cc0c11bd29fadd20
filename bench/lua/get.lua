-- GET with an Authorization header from the environment (AUTH).
local auth = os.getenv("AUTH")
request = function()
  local headers = {}
  if auth and auth ~= "" then headers["Authorization"] = auth end
  return wrk.format("GET", nil, headers)
end
