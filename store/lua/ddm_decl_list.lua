-- KEYS: the configuration (ddm_g: 9)   ARGV: -
-- Every declaration, sorted by identifier: {{identifier, type, kind, token, updated}...}.
local g = ddm_g(1)
local ids = redis.call('SMEMBERS', g.decls)
table.sort(ids)
local out = {}
for _, id in ipairs(ids) do
  local d = redis.call('HMGET', g.decl .. id, 'type', 'kind', 'token', 'updated')
  if d[1] then out[#out + 1] = {id, d[1], d[2], d[3], d[4] or ''} end
end
return out
