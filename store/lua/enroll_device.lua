-- KEYS: ota_cert new_cert dev cert (the registry's prefix key) (+ the fleet block: fx_begin)
-- ARGV: udid user now serial new_fp ota_fp retry_ms
-- End of OTA phase 2: the OTA identity is used up (single use, checked here
-- again because two requests may race), the device identity just issued is
-- registered and bound to the device record with its user, and the identity
-- of the UDID's previous enrollment is revoked.
-- A retry of a phase 2 whose answer was lost: the OTA identity is used up,
-- but its entry still holds retry_until (cleared once mdmd answered) and the
-- device identity it got (device_fp), which never reached the device: that
-- one is revoked (reason 'retried') and the new one takes its place, in this
-- one step, so one enrollment never has two live identities.
-- Returns {'ok', revoked fingerprint or ''} or {'ota_used'}.
-- Single layout only: the cluster layout makes the same steps as calls in
-- turn, each on its own slot (ota_use.lua, enroll_dev.lua; store_enroll.c).
local ota, new, dev, cert = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
fx_begin(4)
local udid, user, now, serial, fp, ota_fp = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local o = redis.call('HMGET', ota, 'state', 'udid', 'kind', 'revoked_reason', 'retry_until',
                     'device_fp')
if o[2] ~= udid or o[3] ~= 'ota' then return fx_reply({'ota_used'}) end
local revoked = ''
if o[1] == 'issued' then
  redis.call('HSET', ota, 'state', 'revoked', 'revoked_at', now, 'revoked_reason', 'used')
elseif o[1] == 'revoked' and o[4] == 'used' and tonumber(o[5] or '0') >= tonumber(now) then
  if o[6] and o[6] ~= fp and fx_revoke(cert, o[6], udid, now, 'retried') then revoked = o[6] end
else
  return fx_reply({'ota_used'})
end
redis.call('HSET', ota, 'device_fp', fp, 'retry_until', tonumber(now) + tonumber(ARGV[7]))
local old = redis.call('HMGET', dev, 'issued_fp', 'cert_fp')
for _, f in ipairs({old[1], old[2]}) do
  if f and f ~= fp and fx_revoke(cert, f, udid, now, 'reenrolled') then revoked = f end
end
redis.call('HSET', new, 'udid', udid, 'user', user, 'kind', 'device', 'state', 'issued',
           'issued', now, 'serial', serial, 'ota_fp', ota_fp)
local idx = mdm_index_get(dev)
redis.call('HSET', dev, 'udid', udid, 'user', user, 'issued_fp', fp, 'issued_at', now)
fx_index_sync(dev, udid, idx)
fx_event('type', 'cert_issued', 'udid', udid, 'fp', fp, 'user', user, 'time', now)
return fx_reply({'ok', revoked})
