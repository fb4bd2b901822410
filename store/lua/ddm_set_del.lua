-- KEYS: the configuration (ddm_g: 9), then, single layout only, the prefix
--       ddm:sets: (+ {UDID}[:UserID] is an enrollment's set of sets, in the
--       device's slot)   ARGV: name
-- Deletes a set and its assignment.  Returns 1, or 0 when unknown.  Cluster
-- layout: {1, target...}: mdmd takes the set out of the targets' own sets
-- afterwards (store_ddm.c).
local g = ddm_g(1)
local name = ARGV[1]
local k = g.set .. name
if redis.call('EXISTS', k) == 0 then return 0 end
for _, id in ipairs(redis.call('SMEMBERS', k .. ':decls')) do
  redis.call('SREM', g.decl .. id .. ':sets', name)
end
local targets = redis.call('SMEMBERS', k .. ':targets')
if not MDM_CLUSTER then
  for _, e in ipairs(targets) do
    local udid, uid = string.match(e, '^([^:]+):?(.*)$')
    local sk = KEYS[10] .. '{' .. udid .. '}'
    if uid ~= '' then sk = sk .. ':' .. uid end
    redis.call('SREM', sk, name)
  end
end
for _, u in ipairs(redis.call('SMEMBERS', k .. ':users')) do
  redis.call('SREM', g.user .. u, name)
end
redis.call('SREM', g.everyone, name)
redis.call('SREM', g.sets, name)
redis.call('DEL', k, k .. ':decls', k .. ':targets', k .. ':users')
if MDM_CLUSTER then
  table.insert(targets, 1, 1)
  return targets
end
return 1
