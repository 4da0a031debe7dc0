-- KEYS s m h; ARGV now, id... -> deleted count
local s, m, h = KEYS[1], KEYS[2], KEYS[3]
if state(s, tonumber(ARGV[1])) ~= 2 then return 0 end
local n, freed = 0, 0
for i = 2, #ARGV do
  if redis.call('ZSCORE', m, ARGV[i]) then
    freed = freed + redis.call('HSTRLEN', h, ARGV[i])
    redis.call('HDEL', h, ARGV[i])
    redis.call('ZREM', m, ARGV[i])
    n = n + 1
  end
end
if n > 0 then
  redis.call('HINCRBY', s, 'b', -freed)
  touch(s, ARGV[1])
end
return n
