-- KEYS s m h; ARGV now, min, max, last|'', limit|'' -> {seq, body, ...}
local s, m, h = KEYS[1], KEYS[2], KEYS[3]
if state(s, tonumber(ARGV[1])) ~= 2 then return {} end
local flat
if ARGV[4] ~= '' then
  local rev = redis.call('ZRANGE', m, ARGV[3], ARGV[2], 'BYSCORE', 'REV', 'LIMIT', 0, tonumber(ARGV[4]), 'WITHSCORES')
  flat = {}
  for i = #rev - 1, 1, -2 do flat[#flat + 1] = rev[i]; flat[#flat + 1] = rev[i + 1] end
  if ARGV[5] ~= '' then
    local keep = 2 * tonumber(ARGV[5])
    for i = #flat, keep + 1, -1 do flat[i] = nil end
  end
elseif ARGV[5] ~= '' then
  flat = redis.call('ZRANGE', m, ARGV[2], ARGV[3], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[5]), 'WITHSCORES')
else
  flat = redis.call('ZRANGE', m, ARGV[2], ARGV[3], 'BYSCORE', 'WITHSCORES')
end
local out, ids = {}, {}
for i = 1, #flat, 2 do ids[#ids + 1] = flat[i] end
for i = 1, #ids, 500 do
  local bodies = redis.call('HMGET', h, unpack(ids, i, math.min(i + 499, #ids)))
  for j = 1, #bodies do
    out[#out + 1] = flat[2 * (i + j - 1)]
    out[#out + 1] = bodies[j]
  end
end
return out
