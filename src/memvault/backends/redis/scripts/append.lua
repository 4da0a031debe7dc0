-- KEYS s m h k [ix]; ARGV now, expires|'', native_ms|'', refresh_below_ms, user|'', metadata, max|0, mode (a|r|e|p|b),
-- sid, id1, body1, ... -> {seq, ...} (mode e: the session's info). With a 5th key (standalone servers) the namespace
-- index is updated here too; on a Cluster the caller does it next, since the index lives in another slot.
local s, m, h, k = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local base = string.sub(s, 1, -2)
local now_s = ARGV[1]
local cur = redis.call('HMGET', s, 'c', 'x', 'ls', 'b', 'up')
local ls, b
local fields = {}
if cur[1] and (not tonumber(cur[3] or '0') or not tonumber(cur[4] or '0') or (cur[2] and not tonumber(cur[2]))
    or not tonumber(cur[5] or '0')) then
  return redis.error_reply('MEMVAULT_CORRUPT session fields ls/b/x/up are not numbers')
end
if (not cur[1]) or (cur[2] and tonumber(cur[2]) <= tonumber(now_s)) then
  -- a new session, or a write to an expired one: start from nothing
  for _, kind in ipairs(redis.call('SMEMBERS', k)) do redis.call('DEL', base .. 'r:' .. kind) end
  redis.call('DEL', s, m, h, k, base .. 'ev', base .. 'ez')
  fields = {'c', now_s, 'up', now_s, 'md', ARGV[6]}
  if ARGV[5] ~= '' then fields[#fields + 1] = 'u'; fields[#fields + 1] = ARGV[5] end
  ls, b = 0, 0
else
  ls, b = tonumber(cur[3] or '0'), tonumber(cur[4] or '0')
  if tonumber(cur[5] or '0') < tonumber(now_s) then fields = {'up', now_s} end
end
if ARGV[8] == 'r' then
  redis.call('DEL', m, h)
  b = 0
end
local seqs, flags = {}, {}
-- mode p: ARGV[10] is '1' for if_absent, then "kind\0key", value pairs -> {1 written | 0 kept, ...}
-- mode b: ARGV[10] is the number n of messages, then n id, body pairs, then entry pairs (written) -> seqs
local mode = ARGV[8]
local rec_from, rec_to, entries_from = 10, #ARGV, #ARGV + 1
if mode == 'p' then
  rec_from, rec_to, entries_from = 1, 0, 11
elseif mode == 'b' then
  rec_from = 11
  rec_to = 10 + 2 * tonumber(ARGV[10])
  entries_from = rec_to + 1
end
for i = rec_from, rec_to, 2 do
  local id, body = ARGV[i], ARGV[i + 1]
  if redis.call('ZADD', m, 'NX', ls + 1, id) == 1 then
    ls = ls + 1
    redis.call('HSET', h, id, body)
    b = b + #body
    seqs[#seqs + 1] = ls
  else
    seqs[#seqs + 1] = tonumber(redis.call('ZSCORE', m, id))
  end
end
if entries_from <= #ARGV then
  local ev, ez, nx = base .. 'ev', base .. 'ez', mode == 'p' and ARGV[10] == '1'
  for i = entries_from, #ARGV, 2 do
    if nx and redis.call('HEXISTS', ev, ARGV[i]) == 1 then
      flags[#flags + 1] = 0
    else
      redis.call('HSET', ev, ARGV[i], ARGV[i + 1])
      redis.call('ZADD', ez, 0, ARGV[i])
      flags[#flags + 1] = 1
    end
  end
end
if mode == 'p' then seqs = flags end
local cap = tonumber(ARGV[7])
if cap > 0 then
  local n = redis.call('ZCARD', m)
  if n > cap then
    local old = redis.call('ZRANGE', m, 0, n - cap - 1)
    for _, id in ipairs(old) do b = b - redis.call('HSTRLEN', h, id) end
    for i = 1, #old, 500 do redis.call('HDEL', h, unpack(old, i, math.min(i + 499, #old))) end
    redis.call('ZREMRANGEBYRANK', m, 0, n - cap - 1)
  end
end
fields[#fields + 1] = 'ls'; fields[#fields + 1] = ls
fields[#fields + 1] = 'b'; fields[#fields + 1] = b
if ARGV[2] ~= '' then
  fields[#fields + 1] = 'x'; fields[#fields + 1] = ARGV[2]
elseif cur[2] then
  redis.call('HDEL', s, 'x')
end
redis.call('HSET', s, unpack(fields))
-- native expiry: refreshed only when it ran below ttl + slack/2 (or is missing), so most appends skip it; new
-- message keys (first message, after clear/replace) have no expiry yet and are always caught by the PTTL of m
local pm = redis.call('PTTL', m)
local refresh
if mode == 'p' or mode == 'b' then
  refresh = true  -- entry keys may be new: give them the session's expiry now
elseif ARGV[3] ~= '' then
  refresh = pm < tonumber(ARGV[4])  -- also -1 (no expiry yet) and -2 (no messages)
else
  refresh = pm > 0 or redis.call('PTTL', s) > 0
end
if refresh then
  local all = {s, m, h, k, base .. 'ev', base .. 'ez'}
  for _, kind in ipairs(redis.call('SMEMBERS', k)) do all[#all + 1] = base .. 'r:' .. kind end
  for _, key in ipairs(all) do
    if ARGV[3] ~= '' then redis.call('PEXPIRE', key, ARGV[3]) else redis.call('PERSIST', key) end
  end
end
if KEYS[5] then redis.call('ZADD', KEYS[5], 'GT', now_s, ARGV[9]) end
if ARGV[8] == 'e' then
  local r = redis.call('HMGET', s, 'c', 'up', 'x', 'u', 'md', 'ls', 'b')
  r[8] = redis.call('ZCARD', m)
  return r
end
return seqs
