-- KEYS: dev q   ARGV: udid now ttl_s [uuid request_type plist]...
-- Queues the post-enrollment commands of one device, in order, atomically:
-- each body is stored once in mdm:cmd:<uuid> as enqueue.lua does.  Runs only
-- while the record says provisioning is pending (token_update.lua), and
-- clears that mark in the same step, so that a retry (the next TokenUpdate,
-- the timer, a resend after a lost reply) never queues it twice.  Nothing is
-- queued for an unknown or checked-out device, or one no longer pending.
-- Returns {queued, target} with target {udid, token, push_magic, topic}, or
-- {} when it cannot be woken.
local dev, q, udid, now, ttl = KEYS[1], KEYS[2], ARGV[1], ARGV[2], tonumber(ARGV[3])
local d = redis.call('HMGET', dev, 'state', 'token', 'push_magic', 'topic', 'token_invalid',
                     'provision_pending')
if not d[1] or d[1] == 'checked_out' or not d[6] then
  redis.call('ZREM', 'mdm:provision', udid)
  return {0, {}}
end
local n = 0
for i = 4, #ARGV - 2, 3 do
  local cmd = 'mdm:cmd:' .. ARGV[i]
  redis.call('HSET', cmd, 'plist', ARGV[i + 2], 'request_type', ARGV[i + 1], 'created', now,
             'targets', 1)
  redis.call('EXPIRE', cmd, ttl)
  redis.call('SADD', 'mdm:cmdto:' .. ARGV[i], udid)
  redis.call('EXPIRE', 'mdm:cmdto:' .. ARGV[i], ttl)
  redis.call('RPUSH', q, ARGV[i])
  n = n + 1
end
redis.call('HDEL', dev, 'provision_pending')
redis.call('ZREM', 'mdm:provision', udid)
-- The fleet-wide queue depth (mdm:stats) moves as in enqueue.lua.
redis.call('HINCRBY', 'mdm:stats', 'queue_depth', n)
if d[2] and d[3] and not d[5] then return {n, {udid, d[2], d[3], d[4] or ''}} end
return {n, {}}
