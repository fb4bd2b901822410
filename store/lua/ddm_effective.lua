-- KEYS: the configuration (ddm_g: 9)   ARGV: user_id user kind identifier set...
-- Cluster layout, the {g} slot: an enrollment's effective declarations from
-- its own sets and its user (ddm_tokens.lua, ddm_items.lua, ddm_fetch.lua: their first step).  Returns {sync token,
-- {{identifier, type, kind, server token}...}, json}: json is the
-- declaration identifier's when it is among them with that kind, else ''
-- (kind '': no declaration asked for).
local g = ddm_g(1)
local own = {}
for i = 5, #ARGV do own[#own + 1] = ARGV[i] end
local items, token = ddm_effective_g(g, own, ARGV[1], ARGV[2])
local json = ''
for _, it in ipairs(items) do
  if ARGV[3] ~= '' and it[1] == ARGV[4] and it[3] == ARGV[3] then
    json = redis.call('HGET', g.decl .. it[1], 'json') or ''
  end
end
return {token, items, json}
