-- GET P/jobs/<id> for an id drawn at random from the populated ids job0 .. job<n-1>.
-- Arguments after "--": <prefix> <n>.
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")

local next_thread = 1
function setup(thread)
   thread:set("tid", next_thread)
   next_thread = next_thread + 1
end

function init(args)
   prefix = args[1]
   n = tonumber(args[2])
   math.randomseed(tid * 7919 + os.time())
end

function request()
   return wrk.format("GET", prefix .. "/jobs/job" .. math.random(0, n - 1))
end
