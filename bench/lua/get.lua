-- GET the URL's path (wrk's default request); Authorization comes from -H.
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")
