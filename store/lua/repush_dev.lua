-- KEYS: dev q   ARGV: udid now after_ms max_ms max_attempts
-- Cluster layout: repush_due.lua's decision for one device claimed by
-- repush_claim.lua, in the device's slot; the schedule (mdm:repush) and the
-- push_unanswered event are fleet writes on its bucket.  Returns JSON
-- [udid, token, push_magic, topic] when it is to be pushed, else ''.
local dev, u, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local after, cap, maxn = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
fx_begin(2)
local d = redis.call('HMGET', dev, 'state', 'token', 'push_magic', 'topic', 'token_invalid',
                     'repush_attempts')
local n = (tonumber(d[6]) or 0) + 1
if not d[1] or d[1] == 'checked_out' or not d[2] or not d[3] or d[5] or
   redis.call('LLEN', KEYS[2]) == 0 then
  fx_zrem('repush', u)
  if d[1] then redis.call('HDEL', dev, 'repush_attempts') end
  return fx_reply('')
end
if n > maxn then
  fx_zrem('repush', u)
  redis.call('HSET', dev, 'push_unanswered', now)
  fx_event('type', 'push_unanswered', 'udid', u, 'attempts', n - 1, 'time', now)
  return fx_reply('')
end
redis.call('HSET', dev, 'repush_attempts', n)
fx_zadd('repush', now + math.min(after * 2 ^ n, cap), u)
return fx_reply(cjson.encode({u, d[2], d[3], d[4] or ''}))
