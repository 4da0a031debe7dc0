local function num(value, what)
  local n = tonumber(value)
  if value and not n then error({err = 'MEMVAULT_CORRUPT session field ' .. what .. ' is not a number'}) end
  return n
end
