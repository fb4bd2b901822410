-- KEYS: cmd   ARGV: uuid request_type plist now ttl_s udid...
-- enqueue.lua for urgent commands (Lock, Erase): the UUID goes to the head of
-- each queue, so it is the next one sent.  No job variant.  Idempotent as
-- enqueue.lua is: a UUID stored with another body is a conflict ({-1}), and a
-- device (or user channel, "<UDID>:<user>") given the UUID before
-- (mdm:cmdto:<uuid>, or its queue holds it) is passed over and counted as
-- already.
-- Returns {queued, {unknown udid...}, {udid, token, push_magic, topic}...,
-- already, 0}: the push part names what to push, so that no second round
-- trip is needed.
local cmd = KEYS[1]
local uuid, now = ARGV[1], ARGV[4]
local old = redis.call('HGET', cmd, 'plist')
if old and old ~= ARGV[3] then return {-1, {}, {}, 0, 0} end
if not old then
  redis.call('HSET', cmd, 'plist', ARGV[3], 'request_type', ARGV[2], 'created', now, 'targets', 0)
end
local to = 'mdm:cmdto:' .. uuid
local queued, already, unknown, push = 0, 0, {}, {}
for i = 6, #ARGV do
  local u = ARGV[i]
  local dev = mdm_key('dev', u)
  local q = mdm_key('q', u)
  local d = redis.call('HMGET', dev, 'state', 'token', 'push_magic', 'topic', 'token_invalid')
  if not d[1] or d[1] == 'checked_out' then
    unknown[#unknown + 1] = u
  elseif redis.call('SADD', to, u) == 0 or redis.call('LPOS', q, uuid) then
    already = already + 1
  else
    redis.call('LPUSH', q, uuid)
    queued = queued + 1
    if d[2] and d[3] and not d[5] then push[#push + 1] = {u, d[2], d[3], d[4] or ''} end
  end
end
redis.call('HINCRBY', cmd, 'targets', queued)
redis.call('HINCRBY', 'mdm:stats', 'queue_depth', queued)
redis.call('EXPIRE', cmd, tonumber(ARGV[5]))
redis.call('EXPIRE', to, tonumber(ARGV[5]))
return {queued, unknown, push, already, 0}
