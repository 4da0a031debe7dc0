local function base_of(s) return string.sub(s, 1, -2) end
