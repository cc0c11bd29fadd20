-- POST /api/departments/ with a name unique to this thread and request.
local auth = os.getenv("AUTH")
local counter = 0
-- Unique per run and thread, so that reruns against kept data never collide.
math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
local thread_id = tostring(os.time()) .. "-" .. tostring(math.random(1, 1e9))
request = function()
  counter = counter + 1
  local body = '{"name":"Bench ' .. thread_id .. '-' .. counter .. '"}'
  return wrk.format("POST", nil, {["Authorization"] = auth, ["Content-Type"] = "application/json"}, body)
end
