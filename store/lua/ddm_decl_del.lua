-- KEYS: the configuration (ddm_g: 9)   ARGV: identifier now
-- Deletes a declaration and takes it out of every set that held it (their
-- devices then drop it).  Returns -1 when unknown, else the number of sets.
local g = ddm_g(1)
local id = ARGV[1]
local k = g.decl .. id
if redis.call('EXISTS', k) == 0 then return -1 end
local sets = redis.call('SMEMBERS', k .. ':sets')
for _, n in ipairs(sets) do
  redis.call('SREM', g.set .. n .. ':decls', id)
  redis.call('HSET', g.set .. n, 'updated', ARGV[2])
end
redis.call('DEL', k, k .. ':sets')
redis.call('SREM', g.decls, id)
return #sets
