local function info(s, m)
  local r = redis.call('HMGET', s, 'c', 'up', 'x', 'u', 'md', 'ls', 'b')
  r[8] = redis.call('ZCARD', m)
  return r
end
