-- KEYS s m; ARGV now -> 0 (missing) | 1 (expired) | info
local st = state(KEYS[1], tonumber(ARGV[1]))
if st ~= 2 then return st end
return info(KEYS[1], KEYS[2])
