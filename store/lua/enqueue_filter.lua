-- KEYS: cmd devices job   ARGV: uuid request_type plist now ttl_s cursor count state
-- One step of a bulk enqueue by filter: ZSCAN about `count` entries of
-- mdm:devices from `cursor` and queue the command for those in `state`.
-- ZSCAN (not ZRANGE by rank) because ranks move while devices check in and
-- would skip some; it may return an entry twice if the set is resized
-- meanwhile, so a device whose queue already holds the UUID is passed over.
-- Returns {next_cursor ("0": done), scanned, queued, {udid, token, push_magic, topic}...}.
local cmd, devices, job = KEYS[1], KEYS[2], KEYS[3]
local uuid, now, state = ARGV[1], ARGV[4], ARGV[8]
if redis.call('EXISTS', cmd) == 0 then
  redis.call('HSET', cmd, 'plist', ARGV[3], 'request_type', ARGV[2], 'created', now, 'targets', 0)
end
local scan = redis.call('ZSCAN', devices, ARGV[6], 'COUNT', tonumber(ARGV[7]))
local ids = scan[2]
local scanned, queued, push = 0, 0, {}
for i = 1, #ids, 2 do
  local u = ids[i]
  scanned = scanned + 1
  local d = redis.call('HMGET', 'mdm:dev:{' .. u .. '}', 'state', 'token', 'push_magic', 'topic',
                       'token_invalid')
  local q = 'mdm:q:{' .. u .. '}'
  if d[1] == state and not redis.call('LPOS', q, uuid) then
    redis.call('RPUSH', q, uuid)
    queued = queued + 1
    if d[2] and d[3] and not d[5] then push[#push + 1] = {u, d[2], d[3], d[4] or ''} end
  end
end
redis.call('HINCRBY', cmd, 'targets', queued)
redis.call('EXPIRE', cmd, tonumber(ARGV[5]))
redis.call('HINCRBY', 'mdm:stats', 'queue_depth', queued)
redis.call('HINCRBY', job, 'done', scanned)
redis.call('HINCRBY', job, 'queued', queued)
redis.call('HINCRBY', job, 'skipped', scanned - queued)
redis.call('HSET', job, 'updated', now, 'cursor', scan[1])
return {scan[1], scanned, queued, push}
