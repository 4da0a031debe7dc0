-- KEYS s m; ARGV now, expected metadata text ('' with ARGV[4] = 'r': any), new metadata text, mode (r|m)
-- -> 0 no live session | 1 the metadata changed since it was read (the caller merges again) | the session's info.
-- A compare-and-set: the merge itself runs in the client (JSON numbers must round-trip exactly, which Lua's
-- doubles cannot promise), the script only lands it if nothing changed in between.
local s, m = KEYS[1], KEYS[2]
if state(s, tonumber(ARGV[1])) ~= 2 then return 0 end
if ARGV[4] ~= 'r' and (redis.call('HGET', s, 'md') or '{}') ~= ARGV[2] then return 1 end
redis.call('HSET', s, 'md', ARGV[3])
touch(s, ARGV[1])
return info(s, m)
