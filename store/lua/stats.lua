-- KEYS: stats devices   ARGV: -
-- What /metrics reads from Redis at each scrape, in O(1): the total queue
-- depth (kept by every script that adds to or removes from a device queue)
-- and the fleet size.  Returns {queue_depth, devices}.
local depth = tonumber(redis.call('HGET', KEYS[1], 'queue_depth') or '0')
return {depth, redis.call('ZCARD', KEYS[2])}
