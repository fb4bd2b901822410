-- KEYS: repush (mdm:repush, or the device's bucket of it)   ARGV: udid due_ms
-- Schedules a re-push (a NotNow'd command): the earlier due time wins.
return redis.call('ZADD', KEYS[1], 'LT', tonumber(ARGV[2]), ARGV[1])
