-- KEYS: the configuration (ddm_g: 9)   ARGV: identifier type kind server_token json now
-- Creates or replaces a declaration.  Returns {created (1|0), changed (1|0),
-- sets that hold it}: a changed declaration in a set must reach its devices.
local g = ddm_g(1)
local id = ARGV[1]
local k = g.decl .. id
local old = redis.call('HMGET', k, 'token', 'created')
local created = old[1] == false
local changed = old[1] ~= ARGV[4]
if changed then
  redis.call('HSET', k, 'identifier', id, 'type', ARGV[2], 'kind', ARGV[3], 'token', ARGV[4],
             'json', ARGV[5], 'updated', ARGV[6])
end
if created then redis.call('HSET', k, 'created', ARGV[6]) end
redis.call('SADD', g.decls, id)
return {created and 1 or 0, changed and 1 or 0, redis.call('SCARD', k .. ':sets')}
