-- KEYS: -   ARGV: -
-- Every asset, sorted: {{name, content_type, sha256, size, updated}...}.
local names = redis.call('SMEMBERS', 'mdm:ddm:assets')
table.sort(names)
local out = {}
for _, n in ipairs(names) do
  local d = redis.call('HMGET', 'mdm:ddm:asset:' .. n, 'content_type', 'sha256', 'size', 'updated')
  if d[1] then out[#out + 1] = {n, d[1], d[2], d[3], d[4]} end
end
return out
