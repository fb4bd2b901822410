-- KEYS: dev q notnow devices events   ARGV: udid now cert_fp
-- The device removed its MDM profile: nothing queued can reach it any more,
-- and its certificate is revoked (a re-enrollment gets a new one); the record
-- and the history stay.
local dev, q, nn, devices, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local udid, now, fp = ARGV[1], ARGV[2], ARGV[3]
-- The same CheckOut again within 600 s (its answer was lost): done already,
-- and the device is told so, not refused; nothing is written twice.
local was = redis.call('HMGET', dev, 'state', 'cert_fp', 'checked_out_at')
if was[1] == 'checked_out' and was[2] == fp and
   tonumber(now) - tonumber(was[3] or '0') <= 600000 then
  return 'ok'
end
local bad = mdm_ident(dev, fp)
if bad then return bad end
local dropped = redis.call('LLEN', q)
redis.call('DEL', q, nn)
if dropped > 0 then redis.call('HINCRBY', 'mdm:stats', 'queue_depth', -dropped) end
local os = mdm_os_get(dev)
redis.call('HSET', dev, 'state', 'checked_out', 'checked_out_at', now, 'last_seen', now)
mdm_os_sync(dev, os)
redis.call('ZADD', devices, now, udid)
mdm_revoke(events, fp, udid, now, 'checkout')
mdm_end_channels(events, udid, now)
mdm_event(events, 'type', 'checked_out', 'udid', udid, 'time', now, 'dropped', dropped)
return 'ok'
