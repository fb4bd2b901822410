-- KEYS: item assign set   ARGV: id
-- Returns 1, or 0 for an unknown id.  Commands already queued stay queued.
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
