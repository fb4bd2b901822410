-- KEYS: dev q notnow   ARGV: max queue entries
-- Returns {} for an unknown device, else {record, queue, notnow}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
return {redis.call('HGETALL', KEYS[1]),
        redis.call('LRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1),
        redis.call('SMEMBERS', KEYS[3])}
