-- KEYS: cmd devices job to stats dev q   ARGV: uuid request_type plist now ttl_s cursor count
--   state step
-- Single layout only (the cluster layout walks the mdm:devices buckets from mdmd and
-- queues through enqueue.lua per slot: store_queue.c).  to is mdm:cmdto:<uuid>; dev and
-- q are the prefixes of the device keys ('mdm:dev:', 'mdm:q:'): the devices are learned
-- from the scan, so their keys are made here from those two, which is fine on the one
-- node of the single layout.
-- One step of a bulk enqueue by filter: ZSCAN about `count` entries of
-- mdm:devices from `cursor` and queue the command for those in `state`.
-- ZSCAN (not ZRANGE by rank) because ranks move while devices check in and
-- would skip some; it may return an entry twice if the set is resized
-- meanwhile, so a device given the UUID before (mdm:cmdto, as in
-- enqueue.lua, or its queue holds it) is passed over.
-- step: how many steps the job has done; when the record says more (this
-- step ran but its reply was lost), nothing runs and the stored cursor is
-- returned, so that the job resumes from it.
-- Returns {next_cursor ("0": done), scanned, queued, {udid, token, push_magic, topic}...},
-- or {-1} when the UUID is stored with another body.
local cmd, devices, job, to, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local uuid, now, state, step = ARGV[1], ARGV[4], ARGV[8], tonumber(ARGV[9])
local old = redis.call('HGET', cmd, 'plist')
if old and old ~= ARGV[3] then return {-1} end
local f = redis.call('HMGET', job, 'steps', 'cursor')
if tonumber(f[1] or '0') > step then return {f[2] or '0', 0, 0, {}} end
if not old then
  redis.call('HSET', cmd, 'plist', ARGV[3], 'request_type', ARGV[2], 'created', now, 'targets', 0)
end
local scan = redis.call('ZSCAN', devices, ARGV[6], 'COUNT', tonumber(ARGV[7]))
local ids = scan[2]
local scanned, queued, push = 0, 0, {}
for i = 1, #ids, 2 do
  local u = ids[i]
  scanned = scanned + 1
  local d = redis.call('HMGET', KEYS[6] .. '{' .. u .. '}', 'state', 'token', 'push_magic', 'topic',
                       'token_invalid')
  local q = KEYS[7] .. '{' .. u .. '}'
  if d[1] == state and redis.call('SADD', to, u) == 1 and not redis.call('LPOS', q, uuid) then
    redis.call('RPUSH', q, uuid)
    mdm_poke(u)
    queued = queued + 1
    if d[2] and d[3] and not d[5] then push[#push + 1] = {u, d[2], d[3], d[4] or ''} end
  end
end
redis.call('HINCRBY', cmd, 'targets', queued)
redis.call('EXPIRE', cmd, tonumber(ARGV[5]))
redis.call('EXPIRE', to, tonumber(ARGV[5]))
redis.call('HINCRBY', stats, 'queue_depth', queued)
redis.call('HINCRBY', job, 'done', scanned)
redis.call('HINCRBY', job, 'queued', queued)
redis.call('HINCRBY', job, 'skipped', scanned - queued)
redis.call('HSET', job, 'updated', now, 'cursor', scan[1], 'steps', step + 1)
return {scan[1], scanned, queued, push}
