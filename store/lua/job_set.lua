-- KEYS: job   ARGV: ttl_s [field value]...
-- Creates or updates a bulk job record (mdm:job:<id>) and renews its TTL.
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
