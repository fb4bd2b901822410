-- KEYS: cmd   ARGV: uuid request_type plist now ttl_s udid...
-- enqueue.lua for urgent commands (Lock, Erase): the UUID goes to the head of
-- each queue, so it is the next one sent.  No job variant.
-- Stores the command body once and queues its UUID for every managed UDID
-- (or user channel, "<UDID>:<user>").
-- Returns {queued, {unknown udid...}, {udid, token, push_magic, topic}...}:
-- the last part names what to push, so that no second round trip is needed.
local cmd = KEYS[1]
local uuid, now = ARGV[1], ARGV[4]
if redis.call('EXISTS', cmd) == 0 then
  redis.call('HSET', cmd, 'plist', ARGV[3], 'request_type', ARGV[2], 'created', now, 'targets', 0)
end
local queued, unknown, push = 0, {}, {}
for i = 6, #ARGV do
  local u = ARGV[i]
  local dev = mdm_key('dev', u)
  local d = redis.call('HMGET', dev, 'state', 'token', 'push_magic', 'topic', 'token_invalid')
  if d[1] and d[1] ~= 'checked_out' then
    redis.call('LPUSH', mdm_key('q', u), uuid)
    queued = queued + 1
    if d[2] and d[3] and not d[5] then push[#push + 1] = {u, d[2], d[3], d[4] or ''} end
  else
    unknown[#unknown + 1] = u
  end
end
redis.call('HINCRBY', cmd, 'targets', queued)
redis.call('HINCRBY', 'mdm:stats', 'queue_depth', queued)
redis.call('EXPIRE', cmd, tonumber(ARGV[5]))
return {queued, unknown, push}
