-- KEYS: the configuration (ddm_g: 9)   ARGV: -
-- Every asset, sorted: {{name, content_type, sha256, size, updated}...}.
local g = ddm_g(1)
local names = redis.call('SMEMBERS', g.assets)
table.sort(names)
local out = {}
for _, n in ipairs(names) do
  local d = redis.call('HMGET', g.asset .. n, 'content_type', 'sha256', 'size', 'updated')
  if d[1] then out[#out + 1] = {n, d[1], d[2], d[3], d[4]} end
end
return out
