local function wipe(base, with_session)
  local kinds = redis.call('SMEMBERS', base .. 'k')
  for _, kind in ipairs(kinds) do redis.call('DEL', base .. 'r:' .. kind) end
  redis.call('DEL', base .. 'm', base .. 'h', base .. 'k', base .. 'ev', base .. 'ez')
  if with_session then redis.call('DEL', base .. 's') end
end
