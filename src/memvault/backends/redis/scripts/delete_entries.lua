-- KEYS s ez ev; ARGV now, 'k', field... (these keys) | now, 'r', min, max (a lex range) -> deleted count (0 when
-- the session does not exist or has expired)
if state(KEYS[1], tonumber(ARGV[1])) ~= 2 then return 0 end
local ez, ev = KEYS[2], KEYS[3]
local fields
if ARGV[2] == 'k' then
  fields = {}
  for i = 3, #ARGV do
    if redis.call('HEXISTS', ev, ARGV[i]) == 1 then fields[#fields + 1] = ARGV[i] end
  end
else
  fields = redis.call('ZRANGE', ez, ARGV[3], ARGV[4], 'BYLEX')
end
for i = 1, #fields, 500 do
  local part = {unpack(fields, i, math.min(i + 499, #fields))}
  redis.call('HDEL', ev, unpack(part))
  redis.call('ZREM', ez, unpack(part))
end
return #fields
