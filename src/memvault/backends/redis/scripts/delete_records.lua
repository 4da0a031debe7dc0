-- KEYS s k; ARGV kind, key... -> deleted count
local k = KEYS[2]
local rkey = base_of(KEYS[1]) .. 'r:' .. ARGV[1]
local n
if #ARGV == 1 then
  n = redis.call('HLEN', rkey)
  redis.call('DEL', rkey)
else
  local keys = {}
  for i = 2, #ARGV do keys[#keys + 1] = ARGV[i] end
  n = chunked('HDEL', rkey, keys)
end
if redis.call('EXISTS', rkey) == 0 then redis.call('SREM', k, ARGV[1]) end
return n
