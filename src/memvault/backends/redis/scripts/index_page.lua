-- KEYS ix; ARGV max, min, offset, count -> {sid, score, ...} newest first
return redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'BYSCORE', 'REV', 'LIMIT', ARGV[3], ARGV[4], 'WITHSCORES')
