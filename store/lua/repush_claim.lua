-- KEYS: repush (one bucket)   ARGV: lease_until now limit
-- Cluster layout: claims up to limit re-pushes of the bucket due by now,
-- each rescored to lease_until so that the next tick (this mdmd's or
-- another's) leaves it alone; repush_dev.lua then schedules it for real
-- (a fleet write on this bucket) or takes it off.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, u in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[1], u) end
return ids
