-- KEYS s m h k; ARGV now -> removed message count (-1: no live session)
local s, m = KEYS[1], KEYS[2]
if state(s, tonumber(ARGV[1])) ~= 2 then return -1 end
local n = redis.call('ZCARD', m)
wipe(base_of(s), false)
redis.call('HSET', s, 'b', 0)
touch(s, ARGV[1])
return n
