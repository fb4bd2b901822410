-- KEYS: cert (mdm:cert:<fp>)   ARGV: udid now
-- The registry's half of binding a certificate that enrollment issued
-- unbound (SCEP, CN not a UDID) at its first Authenticate, in the cluster
-- layout (authenticate.lua read the entry before and bound the record).
-- Returns 1, or 0 when another UDID bound it in between.
local u = redis.call('HGET', KEYS[1], 'udid')
if u and u ~= '' and u ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'udid', ARGV[1], 'bound_at', ARGV[2])
return 1
