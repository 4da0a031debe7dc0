-- KEYS s k; ARGV now, kind, key, data -> 0 when there is no live session
local s, k = KEYS[1], KEYS[2]
if state(s, tonumber(ARGV[1])) ~= 2 then return 0 end
local rkey = base_of(s) .. 'r:' .. ARGV[2]
redis.call('SADD', k, ARGV[2])
redis.call('HSET', rkey, ARGV[3], ARGV[4])
local ttl = redis.call('PTTL', s)
if ttl > 0 then
  redis.call('PEXPIRE', k, ttl)
  redis.call('PEXPIRE', rkey, ttl)
end
return 1
