-- KEYS, single layout: dev q cmd cmdto (the prefixes mdm:cmd:, mdm:cmdto:)
--   (+ the fleet block: fx_begin); cluster layout: dev q cmdto (the device's
--   mdm:cmdto:{UDID}) (+ its outbox)
-- ARGV: udid now ttl_s [uuid request_type plist]...
-- Queues the post-enrollment commands of one device, in order, atomically:
-- each body is stored once in mdm:cmd:<uuid> as enqueue.lua does (in the
-- cluster layout the bodies are in their own slots: store_content.c stores
-- them first with cmd_put.lua and counts their targets after, as
-- store_queue.c does for an enqueue; the plists are not sent here then).
-- Runs only while the record says provisioning is pending
-- (token_update.lua), and clears that mark in the same step, so that a retry
-- (the next TokenUpdate, the timer, a resend after a lost reply) never queues
-- it twice.  Nothing is queued for an unknown or checked-out device, or one
-- no longer pending.  Returns {queued, target} with target {udid, token,
-- push_magic, topic}, or {} when it cannot be woken.
local dev, q = KEYS[1], KEYS[2]
local udid, now, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
if MDM_CLUSTER then fx_begin(3) else fx_begin(4) end
local d = redis.call('HMGET', dev, 'state', 'token', 'push_magic', 'topic', 'token_invalid',
                     'provision_pending')
if not d[1] or d[1] == 'checked_out' or not d[6] then
  fx_zrem('provision', udid)
  return fx_reply({0, {}})
end
local n = 0
for i = 4, #ARGV - 2, 3 do
  if MDM_CLUSTER then
    local t = KEYS[3]
    redis.call('ZADD', t, now, ARGV[i])
    redis.call('ZREMRANGEBYSCORE', t, '-inf', tonumber(now) - ttl * 1000)
    redis.call('EXPIRE', t, ttl)
  else
    local cmd, to = KEYS[3] .. ARGV[i], KEYS[4] .. ARGV[i]
    redis.call('HSET', cmd, 'plist', ARGV[i + 2], 'request_type', ARGV[i + 1], 'created', now,
               'targets', 1)
    redis.call('EXPIRE', cmd, ttl)
    redis.call('SADD', to, udid)
    redis.call('EXPIRE', to, ttl)
  end
  redis.call('RPUSH', q, ARGV[i])
  mdm_poke(udid)
  n = n + 1
end
redis.call('HDEL', dev, 'provision_pending')
fx_zrem('provision', udid)
-- The fleet-wide queue depth (mdm:stats) moves as in enqueue.lua.
fx_hincr('stats', 'queue_depth', n)
if d[2] and d[3] and not d[5] then return fx_reply({n, {udid, d[2], d[3], d[4] or ''}}) end
return fx_reply({n, {}})
