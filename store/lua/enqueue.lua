-- KEYS: cmd [job]   ARGV: uuid request_type plist now ttl_s from udid...
-- Stores the command body once and queues its UUID for every managed UDID
-- (or user channel, "<UDID>:<user>").
-- Idempotent, so that a client may retry a request that timed out: a UUID
-- already stored with another body is a conflict ({-1}) and nothing is
-- queued; a device that was given the UUID before (mdm:cmdto:<uuid>, or its
-- queue holds it) is passed over and counted as `already`.
-- from: a job's index of the first UDID (docs/REDIS.md, `next`); a chunk the
-- job record says is done already (its reply was lost) is not run again:
-- {0, {}, {}, 0, 1}.  '' for a request's own chunks; 'head' for an urgent
-- command (Lock, Erase: no job), queued at the head so that it is sent next.
-- Returns {queued, {unknown udid...}, {udid, token, push_magic, topic}...,
-- already, replayed}: the push part names what to push, so that no second
-- round trip is needed.
local cmd, job = KEYS[1], KEYS[2]
local uuid, now, from = ARGV[1], ARGV[4], ARGV[6]
local old = redis.call('HGET', cmd, 'plist')
if old and old ~= ARGV[3] then return {-1, {}, {}, 0, 0} end
local head = from == 'head'
if job and from ~= '' and not head and tonumber(redis.call('HGET', job, 'next') or '0') > tonumber(from) then
  return {0, {}, {}, 0, 1}
end
if not old then
  redis.call('HSET', cmd, 'plist', ARGV[3], 'request_type', ARGV[2], 'created', now, 'targets', 0)
end
local to = 'mdm:cmdto:' .. uuid
local queued, already, unknown, push = 0, 0, {}, {}
for i = 7, #ARGV do
  local u = ARGV[i]
  local dev = mdm_key('dev', u)
  local q = mdm_key('q', u)
  local d = redis.call('HMGET', dev, 'state', 'token', 'push_magic', 'topic', 'token_invalid')
  if not d[1] or d[1] == 'checked_out' then
    unknown[#unknown + 1] = u
  elseif redis.call('SADD', to, u) == 0 or redis.call('LPOS', q, uuid) then
    already = already + 1
  else
    redis.call(head and 'LPUSH' or 'RPUSH', q, uuid)
    queued = queued + 1
    if d[2] and d[3] and not d[5] then push[#push + 1] = {u, d[2], d[3], d[4] or ''} end
  end
end
redis.call('HINCRBY', cmd, 'targets', queued)
redis.call('HINCRBY', 'mdm:stats', 'queue_depth', queued)
if job then
  -- A bulk job's progress moves with its chunk, in the same atomic step.
  local n = #ARGV - 6
  redis.call('HINCRBY', job, 'done', n)
  redis.call('HINCRBY', job, 'queued', queued)
  redis.call('HINCRBY', job, 'unknown', #unknown)
  redis.call('HINCRBY', job, 'skipped', already)
  redis.call('HSET', job, 'updated', now, 'next', tonumber(from) + n)
end
redis.call('EXPIRE', cmd, tonumber(ARGV[5]))
redis.call('EXPIRE', to, tonumber(ARGV[5]))
return {queued, unknown, push, already, 0}
