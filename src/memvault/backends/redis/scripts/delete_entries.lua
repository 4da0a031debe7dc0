-- KEYS s ez ev; ARGV 'k', field... (these keys) | 'r', min, max (a lex range) -> deleted count
local ez, ev = KEYS[2], KEYS[3]
local fields
if ARGV[1] == 'k' then
  fields = {}
  for i = 2, #ARGV do
    if redis.call('HEXISTS', ev, ARGV[i]) == 1 then fields[#fields + 1] = ARGV[i] end
  end
else
  fields = redis.call('ZRANGE', ez, ARGV[2], ARGV[3], 'BYLEX')
end
for i = 1, #fields, 500 do
  local part = {unpack(fields, i, math.min(i + 499, #fields))}
  redis.call('HDEL', ev, unpack(part))
  redis.call('ZREM', ez, unpack(part))
end
return #fields
