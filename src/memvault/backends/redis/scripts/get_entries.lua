-- KEYS s ev; ARGV now, field... ("kind\0key") -> {field, value, ...} of those that exist
if state(KEYS[1], tonumber(ARGV[1])) ~= 2 then return {} end
local out = {}
for i = 2, #ARGV, 500 do
  local fields = {unpack(ARGV, i, math.min(i + 499, #ARGV))}
  local values = redis.call('HMGET', KEYS[2], unpack(fields))
  for j = 1, #fields do
    if values[j] then out[#out + 1] = fields[j]; out[#out + 1] = values[j] end
  end
end
return out
