-- KEYS: the configuration (ddm_g: 9)   ARGV: identifier
-- Returns {} for an unknown declaration, else {{field, value...}, {set...}}.
local g = ddm_g(1)
local k = g.decl .. ARGV[1]
local h = redis.call('HGETALL', k)
if #h == 0 then return {} end
local sets = redis.call('SMEMBERS', k .. ':sets')
table.sort(sets)
return {h, sets}
