-- KEYS: the configuration (ddm_g: 9)   ARGV: name
-- Returns 1 deleted, 0 unknown.
local g = ddm_g(1)
redis.call('SREM', g.assets, ARGV[1])
return redis.call('DEL', g.asset .. ARGV[1])
