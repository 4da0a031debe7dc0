-- KEYS s m h; ARGV now, index|'', count, id... -> {seq, body, ...} of the removed messages: `count` from position
-- `index` (as in Python), or the given ids that exist
local s, m, h = KEYS[1], KEYS[2], KEYS[3]
if state(s, tonumber(ARGV[1])) ~= 2 then return {} end
local flat = {}
if ARGV[2] ~= '' then
  local n = redis.call('ZCARD', m)
  local start, count = tonumber(ARGV[2]), tonumber(ARGV[3])
  if start < 0 then start = start + n end
  if count < 1 or start < 0 or start >= n then return {} end
  flat = redis.call('ZRANGE', m, start, math.min(start + count, n) - 1, 'WITHSCORES')
else
  for i = 4, #ARGV do
    local seq = redis.call('ZSCORE', m, ARGV[i])
    if seq then flat[#flat + 1] = ARGV[i]; flat[#flat + 1] = seq end
  end
end
local out, freed = {}, 0
for i = 1, #flat, 2 do
  local id = flat[i]
  local body = redis.call('HGET', h, id)
  if body then freed = freed + #body end
  out[#out + 1] = flat[i + 1]
  out[#out + 1] = body or false
  redis.call('HDEL', h, id)
  redis.call('ZREM', m, id)
end
if #out > 0 then
  redis.call('HINCRBY', s, 'b', -freed)
  touch(s, ARGV[1])
end
return out
