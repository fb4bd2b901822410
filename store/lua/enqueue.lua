-- KEYS, single layout: cmd to job stats (dev q)...: the command, mdm:cmdto:<uuid>, the job
--   record (`to` again for a request's own chunks: no job), mdm:stats, then two keys per
--   UDID (mdm_key's names; the C side makes them, store_mdm_key).
-- KEYS, cluster layout: (dev q to)... for devices of one slot, to being the device's
--   mdm:cmdto:{UDID} (a sorted set, UUID -> when); the body, its targets count, the queue
--   depth and a job's progress are separate calls there (store_queue.c).
-- ARGV: uuid request_type plist now ttl_s from state udid...
-- Single layout: stores the command body once and queues its UUID for every managed
-- UDID (or user channel, "<UDID>:<user>").
-- Idempotent, so that a client may retry a request that timed out: a UUID
-- already stored with another body is a conflict ({-1}) and nothing is
-- queued; a device that was given the UUID before (mdm:cmdto, or its
-- queue holds it) is passed over and counted as `already`.
-- from: a job's index of the first UDID (docs/REDIS.md, `next`); a chunk the
-- job record says is done already (its reply was lost) is not run again:
-- {0, {}, {}, 0, 1}.  '' for a request's own chunks; 'head' for an urgent
-- command (Lock, Erase: no job), queued at the head so that it is sent next.
-- state: '' (a list: devices known and not checked out), else only devices in that state
-- (a filter job's step in the cluster layout; the others count as `already`).
-- Returns {queued, {unknown udid...}, {udid, token, push_magic, topic}...,
-- already, replayed}: the push part names what to push, so that no second
-- round trip is needed.
local uuid, now, from, state = ARGV[1], ARGV[4], ARGV[6], ARGV[7]
local head = from == 'head'
local ttl = tonumber(ARGV[5])
local cmd, to, job, stats, first, per
if MDM_CLUSTER then
  first, per = 1, 3
else
  cmd, to, job, stats, first, per = KEYS[1], KEYS[2], KEYS[3], KEYS[4], 5, 2
  if job == to then job = nil end
  local old = redis.call('HGET', cmd, 'plist')
  if old and old ~= ARGV[3] then return {-1, {}, {}, 0, 0} end
  if job and from ~= '' and not head and tonumber(redis.call('HGET', job, 'next') or '0') > tonumber(from) then
    return {0, {}, {}, 0, 1}
  end
  if not old then
    redis.call('HSET', cmd, 'plist', ARGV[3], 'request_type', ARGV[2], 'created', now, 'targets', 0)
  end
end
-- 1 when the device was given uuid before (its mdm:cmdto); records it otherwise.
local function given(u, k)
  if not MDM_CLUSTER then return redis.call('SADD', to, u) == 0 end
  local t = KEYS[k + 2]
  if redis.call('ZADD', t, 'NX', now, uuid) == 0 then return true end
  redis.call('ZREMRANGEBYSCORE', t, '-inf', tonumber(now) - ttl * 1000)
  redis.call('EXPIRE', t, ttl)
  return false
end
local queued, already, unknown, push = 0, 0, {}, {}
for i = 8, #ARGV do
  local u = ARGV[i]
  local k = first + (i - 8) * per
  local dev, q = KEYS[k], KEYS[k + 1]
  local d = redis.call('HMGET', dev, 'state', 'token', 'push_magic', 'topic', 'token_invalid')
  if state == '' and (not d[1] or d[1] == 'checked_out') then
    unknown[#unknown + 1] = u
  elseif (state ~= '' and d[1] ~= state) or given(u, k) or redis.call('LPOS', q, uuid) then
    already = already + 1
  else
    redis.call(head and 'LPUSH' or 'RPUSH', q, uuid)
    mdm_poke(u)
    queued = queued + 1
    if d[2] and d[3] and not d[5] then push[#push + 1] = {u, d[2], d[3], d[4] or ''} end
  end
end
if MDM_CLUSTER then return {queued, unknown, push, already, 0} end
redis.call('HINCRBY', cmd, 'targets', queued)
redis.call('HINCRBY', stats, 'queue_depth', queued)
if job then
  -- A bulk job's progress moves with its chunk, in the same atomic step.
  local n = #ARGV - 7
  redis.call('HINCRBY', job, 'done', n)
  redis.call('HINCRBY', job, 'queued', queued)
  redis.call('HINCRBY', job, 'unknown', #unknown)
  redis.call('HINCRBY', job, 'skipped', already)
  redis.call('HSET', job, 'updated', now, 'next', tonumber(from) + n)
end
redis.call('EXPIRE', cmd, ttl)
redis.call('EXPIRE', to, ttl)
return {queued, unknown, push, already, 0}
