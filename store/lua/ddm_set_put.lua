-- KEYS: the configuration (ddm_g: 9)   ARGV: name now identifier...
-- Creates or replaces a set's declarations.  Returns {created (1|0),
-- {unknown identifier...}}: with any unknown, nothing changed.
local g = ddm_g(1)
local name, now = ARGV[1], ARGV[2]
local k = g.set .. name
local unknown = {}
for i = 3, #ARGV do
  if redis.call('EXISTS', g.decl .. ARGV[i]) == 0 then unknown[#unknown + 1] = ARGV[i] end
end
local created = redis.call('EXISTS', k) == 0
if #unknown > 0 then return {created and 1 or 0, unknown} end
for _, id in ipairs(redis.call('SMEMBERS', k .. ':decls')) do
  redis.call('SREM', g.decl .. id .. ':sets', name)
end
redis.call('DEL', k .. ':decls')
for i = 3, #ARGV do
  redis.call('SADD', k .. ':decls', ARGV[i])
  redis.call('SADD', g.decl .. ARGV[i] .. ':sets', name)
end
if created then redis.call('HSET', k, 'created', now, 'everyone', '0') end
redis.call('HSET', k, 'updated', now)
redis.call('SADD', g.sets, name)
return {created and 1 or 0, {}}
