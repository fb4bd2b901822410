-- Cancelling a command everywhere, one step: takes uuid off the queues of
-- about `count` devices and their user channels' queues.
-- Single layout: KEYS: job devices q notnow sent channels (+ the fleet block,
--   fx_begin): the job record, mdm:devices, then the prefixes of the device
--   keys ('mdm:q:', 'mdm:notnow:', 'mdm:sent:', 'mdm:channels:'), which the
--   keys of the devices the scan finds are made from (one node).
--   ARGV: uuid cursor count now.  Scans from cursor; progress goes to the job
--   record.  Returns JSON {cursor, scanned, canceled}; cursor '0' when the
--   scan is complete.
-- Cluster layout: KEYS: (q notnow sent channels)... of devices of one slot
--   (mdmd walks the mdm:devices buckets and keeps the record: store_queue.c;
--   a channel's keys are its device's with ':<user>' after, the same slot).
--   ARGV: uuid - - now udid...   Returns {scanned, canceled}.
local uuid, now = ARGV[1], ARGV[4]
local devs, cursor = {}, nil
if MDM_CLUSTER then
  fx_begin(#KEYS)
  for i = 5, #ARGV do
    local k = (i - 5) * 4
    devs[#devs + 1] = {ARGV[i], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]}
  end
else
  fx_begin(6)
  local r = redis.call('ZSCAN', KEYS[2], ARGV[2], 'COUNT', tonumber(ARGV[3]))
  cursor = r[1]
  for i = 1, #r[2], 2 do
    local u, t = r[2][i], '{' .. r[2][i] .. '}'
    devs[#devs + 1] = {u, KEYS[3] .. t, KEYS[4] .. t, KEYS[5] .. t, KEYS[6] .. t}
  end
end
local scanned, canceled = 0, 0
for _, d in ipairs(devs) do
  scanned = scanned + 1
  local chans = {{d[1], d[2], d[3], d[4]}}
  for _, usr in ipairs(redis.call('SMEMBERS', d[5])) do
    local c = ':' .. usr
    chans[#chans + 1] = {d[1] .. c, d[2] .. c, d[3] .. c, d[4] .. c}
  end
  for _, c in ipairs(chans) do
    local n = redis.call('LREM', c[2], 0, uuid)
    if n > 0 then
      redis.call('SREM', c[3], uuid)
      redis.call('HDEL', c[4], uuid)
      fx_hincr('stats', 'queue_depth', -n)
      fx_event('type', 'command_canceled', 'udid', c[1], 'uuid', uuid, 'time', now)
      canceled = canceled + n
    end
  end
end
if MDM_CLUSTER then return fx_reply({scanned, canceled}) end
local job = KEYS[1]
redis.call('HINCRBY', job, 'done', scanned)
redis.call('HINCRBY', job, 'canceled', canceled)
redis.call('HSET', job, 'cursor', cursor, 'updated', now)
if cursor == '0' then redis.call('HSET', job, 'state', 'done') end
redis.call('EXPIRE', job, 604800)
return fx_reply(cjson.encode({cursor = cursor, scanned = scanned, canceled = canceled}))
