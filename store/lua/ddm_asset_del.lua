-- KEYS: -   ARGV: name
-- Returns 1 deleted, 0 unknown.
redis.call('SREM', 'mdm:ddm:assets', ARGV[1])
return redis.call('DEL', 'mdm:ddm:asset:' .. ARGV[1])
