-- KEYS: -   ARGV: name
-- Deletes a set and its assignment.  Returns 1, or 0 when unknown.
local name = ARGV[1]
local k = 'mdm:ddm:set:' .. name
if redis.call('EXISTS', k) == 0 then return 0 end
for _, id in ipairs(redis.call('SMEMBERS', k .. ':decls')) do
  redis.call('SREM', 'mdm:ddm:decl:' .. id .. ':sets', name)
end
for _, e in ipairs(redis.call('SMEMBERS', k .. ':targets')) do
  local udid, uid = string.match(e, '^([^:]+):?(.*)$')
  redis.call('SREM', ddm_key('sets', udid, uid), name)
end
for _, u in ipairs(redis.call('SMEMBERS', k .. ':users')) do
  redis.call('SREM', 'mdm:ddm:user:' .. u, name)
end
redis.call('SREM', 'mdm:ddm:everyone', name)
redis.call('SREM', 'mdm:ddm:sets', name)
redis.call('DEL', k, k .. ':decls', k .. ':targets', k .. ':users')
return 1
