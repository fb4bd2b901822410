-- KEYS: -   ARGV: identifier now
-- Deletes a declaration and takes it out of every set that held it (their
-- devices then drop it).  Returns -1 when unknown, else the number of sets.
local id = ARGV[1]
local k = 'mdm:ddm:decl:' .. id
if redis.call('EXISTS', k) == 0 then return -1 end
local sets = redis.call('SMEMBERS', k .. ':sets')
for _, n in ipairs(sets) do
  redis.call('SREM', 'mdm:ddm:set:' .. n .. ':decls', id)
  redis.call('HSET', 'mdm:ddm:set:' .. n, 'updated', ARGV[2])
end
redis.call('DEL', k, k .. ':sets')
redis.call('SREM', 'mdm:ddm:decls', id)
return #sets
