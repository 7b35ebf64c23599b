-- POST P/jobs with a unique id per request (<run>-<thread>-<counter>); the job is the
-- original's job13 body with a one-day interval, so nothing fires during the measurement.
-- Arguments after "--": <prefix> <run tag>.
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")

local next_thread = 1
function setup(thread)
   thread:set("tid", next_thread)
   next_thread = next_thread + 1
end

function init(args)
   prefix = args[1]
   tag = args[2]
   counter = 0
   headers = {}
   for k, v in pairs(wrk.headers) do headers[k] = v end
   headers["Content-Type"] = "application/json"
end

function request()
   counter = counter + 1
   local id = "w" .. tag .. "-" .. tid .. "-" .. counter
   local body = '{"id": "' .. id .. '", "func": "task:success", "args": ["workspace/test.py"], '
      .. '"trigger": "interval", "days": 1}'
   return wrk.format("POST", prefix .. "/jobs", headers, body)
end
