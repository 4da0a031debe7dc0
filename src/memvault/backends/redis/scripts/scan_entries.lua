-- KEYS s ez ev; ARGV now, min, max (lex bounds: "[kind\0start" / "(kind\0stop"), reverse '1'|'0', limit|'',
-- keys_only '1'|'0' -> {field, value|'', ...} in key order
if state(KEYS[1], tonumber(ARGV[1])) ~= 2 then return {} end
local fields
local limit = ARGV[5] ~= '' and tonumber(ARGV[5]) or nil
if ARGV[4] == '1' then
  if limit then fields = redis.call('ZRANGE', KEYS[2], ARGV[3], ARGV[2], 'BYLEX', 'REV', 'LIMIT', 0, limit)
  else fields = redis.call('ZRANGE', KEYS[2], ARGV[3], ARGV[2], 'BYLEX', 'REV') end
else
  if limit then fields = redis.call('ZRANGE', KEYS[2], ARGV[2], ARGV[3], 'BYLEX', 'LIMIT', 0, limit)
  else fields = redis.call('ZRANGE', KEYS[2], ARGV[2], ARGV[3], 'BYLEX') end
end
local out = {}
for i = 1, #fields, 500 do
  local part = {unpack(fields, i, math.min(i + 499, #fields))}
  local values = ARGV[6] == '1' and {} or redis.call('HMGET', KEYS[3], unpack(part))
  for j = 1, #part do
    out[#out + 1] = part[j]
    out[#out + 1] = values[j] or ''
  end
end
return out
