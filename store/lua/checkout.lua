-- KEYS: dev q notnow channels [cert] (+ the fleet block: fx_begin)   ARGV: udid now cert_fp
--   cert: the registry's prefix key, single layout only; the cluster layout
--   revokes the certificate after this script (cert_revoke.lua), before the
--   device is answered.
-- The device removed its MDM profile: nothing queued can reach it any more,
-- and its certificate is revoked (a re-enrollment gets a new one); the record
-- and the history stay.
local dev, q, nn, chans = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cert = not MDM_CLUSTER and KEYS[5] or nil
fx_begin(5)
local udid, now, fp = ARGV[1], ARGV[2], ARGV[3]
-- The same CheckOut again within 600 s (its answer was lost): done already,
-- and the device is told so, not refused; nothing is written twice.
local was = redis.call('HMGET', dev, 'state', 'cert_fp', 'checked_out_at')
if was[1] == 'checked_out' and was[2] == fp and
   tonumber(now) - tonumber(was[3] or '0') <= 600000 then
  return fx_reply('ok')
end
local bad = mdm_ident_with(dev, fp, cert)
if bad then return fx_reply(bad) end
local dropped = redis.call('LLEN', q)
redis.call('DEL', q, nn)
fx_hincr('stats', 'queue_depth', -dropped)
local os = mdm_os_get(dev)
redis.call('HSET', dev, 'state', 'checked_out', 'checked_out_at', now, 'last_seen', now)
mdm_poke(udid)
fx_os_sync(dev, os)
fx_zadd('devices', now, udid)
if cert then fx_revoke(cert, fp, udid, now, 'checkout') end
fx_end_channels(chans, dev, q, nn, udid, now)
fx_event('type', 'checked_out', 'udid', udid, 'time', now, 'dropped', dropped)
return fx_reply('ok')
