-- KEYS s; ARGV now, kind, key... -> {key, data, ...}
local s = KEYS[1]
if state(s, tonumber(ARGV[1])) ~= 2 then return {} end
local rkey = base_of(s) .. 'r:' .. ARGV[2]
if #ARGV == 2 then return redis.call('HGETALL', rkey) end
local out = {}
for i = 3, #ARGV do
  local v = redis.call('HGET', rkey, ARGV[i])
  if v then out[#out + 1] = ARGV[i]; out[#out + 1] = v end
end
return out
