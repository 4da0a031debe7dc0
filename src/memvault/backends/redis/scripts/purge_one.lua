-- KEYS s m h k; ARGV now -> -1 missing, 1 purged, 0 alive
local st = state(KEYS[1], tonumber(ARGV[1]))
if st == 0 then return -1 end
if st == 1 then wipe(base_of(KEYS[1]), true); return 1 end
return 0
