-- KEYS s k; ARGV now, kind, key... -> deleted count (0 when the session does not exist or has expired)
if state(KEYS[1], tonumber(ARGV[1])) ~= 2 then return 0 end
local k = KEYS[2]
local rkey = base_of(KEYS[1]) .. 'r:' .. ARGV[2]
local n
if #ARGV == 2 then
  n = redis.call('HLEN', rkey)
  redis.call('DEL', rkey)
else
  local keys = {}
  for i = 3, #ARGV do keys[#keys + 1] = ARGV[i] end
  n = chunked('HDEL', rkey, keys)
end
if redis.call('EXISTS', rkey) == 0 then redis.call('SREM', k, ARGV[2]) end
return n
