-- KEYS: -   ARGV: udid due_ms
-- Schedules a re-push (a NotNow'd command): the earlier due time wins.
return redis.call('ZADD', 'mdm:repush', 'LT', tonumber(ARGV[2]), ARGV[1])
