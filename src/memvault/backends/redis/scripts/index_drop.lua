-- KEYS ix; ARGV sid, score, ... -> removed count; an entry is removed only if its score is unchanged, so a session
-- written again meanwhile keeps its entry
local n = 0
for i = 1, #ARGV, 2 do
  local cur = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if cur and tonumber(cur) == tonumber(ARGV[i + 1]) then n = n + redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return n
