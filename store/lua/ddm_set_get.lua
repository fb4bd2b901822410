-- KEYS: the configuration (ddm_g: 9)   ARGV: name
-- Returns {} for an unknown set, else {{field, value...}, {identifier...},
-- {enrollment id...}, {user...}}, each list sorted.
local g = ddm_g(1)
local k = g.set .. ARGV[1]
local h = redis.call('HGETALL', k)
if #h == 0 then return {} end
local out = {h}
for _, what in ipairs({':decls', ':targets', ':users'}) do
  local m = redis.call('SMEMBERS', k .. what)
  table.sort(m)
  out[#out + 1] = m
end
return out
