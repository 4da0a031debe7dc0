-- KEYS s m h; ARGV now, id... -> {seq, body, ...}
local s, m, h = KEYS[1], KEYS[2], KEYS[3]
if state(s, tonumber(ARGV[1])) ~= 2 then return {} end
local out = {}
for i = 2, #ARGV do
  local seq = redis.call('ZSCORE', m, ARGV[i])
  if seq then
    out[#out + 1] = seq
    out[#out + 1] = redis.call('HGET', h, ARGV[i])
  end
end
return out
