-- KEYS s m h ev; ARGV now, then (space, kind, key, old, new)... -> changes made. Each change only while the
-- payload is still `old` (a message: still at seq `old`); seqs, updated_at and the TTL are left alone.
local s, m, h, ev = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if state(s, tonumber(ARGV[1])) ~= 2 then return 0 end
local base = base_of(s)
local n, delta = 0, 0
for i = 2, #ARGV, 5 do
  local space, kind, key, old, new = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if space == 'message' then
    local seq = redis.call('ZSCORE', m, key)
    if seq and tonumber(seq) == tonumber(old) then
      delta = delta + #new - redis.call('HSTRLEN', h, key)
      redis.call('HSET', h, key, new)
      n = n + 1
    end
  else
    local hash, field = base .. 'r:' .. kind, key
    if space == 'entry' then hash, field = ev, kind .. '\0' .. key end
    if redis.call('HGET', hash, field) == old then
      redis.call('HSET', hash, field, new)
      n = n + 1
    end
  end
end
if delta ~= 0 then redis.call('HINCRBY', s, 'b', delta) end
return n
