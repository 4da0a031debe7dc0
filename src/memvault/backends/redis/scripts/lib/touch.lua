local function touch(s, now_s)
  local up = tonumber(redis.call('HGET', s, 'up'))
  if (not up) or up < tonumber(now_s) then redis.call('HSET', s, 'up', now_s) end
end
