-- KEYS: the configuration (ddm_g: 9)   ARGV: -
-- Every set, sorted: {{name, everyone, declarations, targets, users, updated}...}.
local g = ddm_g(1)
local names = redis.call('SMEMBERS', g.sets)
table.sort(names)
local out = {}
for _, n in ipairs(names) do
  local k = g.set .. n
  local h = redis.call('HMGET', k, 'everyone', 'updated')
  out[#out + 1] = {n, h[1] or '0', redis.call('SCARD', k .. ':decls'),
                   redis.call('SCARD', k .. ':targets'), redis.call('SCARD', k .. ':users'),
                   h[2] or ''}
end
return out
