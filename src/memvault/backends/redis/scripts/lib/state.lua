local function state(s, now)
  local c = redis.call('HMGET', s, 'c', 'x')
  if not c[1] then return 0 end
  local x = num(c[2], 'x')
  if x and x <= now then return 1 end
  return 2
end
