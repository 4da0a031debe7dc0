local function chunked(cmd, key, items)
  local n = 0
  for i = 1, #items, 500 do
    n = n + redis.call(cmd, key, unpack(items, i, math.min(i + 499, #items)))
  end
  return n
end
