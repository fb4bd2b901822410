-- KEYS: events repush dev: q:   ARGV: now limit after_ms max_ms max_attempts
-- The re-pushes due now (mdm:repush, scored by due time: no scans).  A device
-- that is gone, has no live token or has nothing queued leaves the schedule;
-- one pushed max_attempts times without answering leaves it flagged
-- push_unanswered (a push_unanswered event: a topic or PushMagic mismatch
-- looks like this); the others are due again after after_ms * 2^attempts,
-- capped at max_ms.  Returns JSON [[udid, token, push_magic, topic]...].
-- Single layout: the devices' keys are built from the prefix keys KEYS[3],
-- KEYS[4] (one Redis).  The cluster layout claims per bucket
-- (repush_claim.lua) and decides per device (repush_dev.lua).
local rp = KEYS[2]
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local after, cap, maxn = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {}
for _, u in ipairs(redis.call('ZRANGEBYSCORE', rp, '-inf', now, 'LIMIT', 0, limit)) do
  local dev = mdm_key_in(KEYS[3], u)
  local d = redis.call('HMGET', dev, 'state', 'token', 'push_magic', 'topic', 'token_invalid',
                       'repush_attempts')
  local n = (tonumber(d[6]) or 0) + 1
  if not d[1] or d[1] == 'checked_out' or not d[2] or not d[3] or d[5] or
     redis.call('LLEN', mdm_key_in(KEYS[4], u)) == 0 then
    redis.call('ZREM', rp, u)
    if d[1] then redis.call('HDEL', dev, 'repush_attempts') end
  elseif n > maxn then
    redis.call('ZREM', rp, u)
    redis.call('HSET', dev, 'push_unanswered', now)
    mdm_event(KEYS[1], 'type', 'push_unanswered', 'udid', u, 'attempts', n - 1, 'time', now)
  else
    redis.call('HSET', dev, 'repush_attempts', n)
    redis.call('ZADD', rp, now + math.min(after * 2 ^ n, cap), u)
    out[#out + 1] = {u, d[2], d[3], d[4] or ''}
  end
end
if #out == 0 then return '[]' end
return cjson.encode(out)
