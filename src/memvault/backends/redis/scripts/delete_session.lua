-- KEYS s m h k; ARGV now -> 1 if a live session was deleted
local st = state(KEYS[1], tonumber(ARGV[1]))
wipe(base_of(KEYS[1]), true)
if st == 2 then return 1 end
return 0
