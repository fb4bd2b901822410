-- KEYS: ota_cert new_cert dev events
-- ARGV: udid user now serial new_fp ota_fp
-- End of OTA phase 2: the OTA identity is used up (single use, checked here
-- again because two requests may race), the device identity just issued is
-- registered and bound to the device record with its user, and the identity
-- of the UDID's previous enrollment is revoked.
-- Returns {'ok', revoked fingerprint or ''} or {'ota_used'}.
local ota, new, dev, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local udid, user, now, serial, fp, ota_fp = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local o = redis.call('HMGET', ota, 'state', 'udid', 'kind')
if o[1] ~= 'issued' or o[2] ~= udid or o[3] ~= 'ota' then return {'ota_used'} end
redis.call('HSET', ota, 'state', 'revoked', 'revoked_at', now, 'revoked_reason', 'used')
local revoked = ''
local old = redis.call('HMGET', dev, 'issued_fp', 'cert_fp')
for _, f in ipairs({old[1], old[2]}) do
  if f and f ~= fp and mdm_revoke(events, f, udid, now, 'reenrolled') then revoked = f end
end
redis.call('HSET', new, 'udid', udid, 'user', user, 'kind', 'device', 'state', 'issued',
           'issued', now, 'serial', serial, 'ota_fp', ota_fp)
local idx = mdm_index_get(dev)
redis.call('HSET', dev, 'udid', udid, 'user', user, 'issued_fp', fp, 'issued_at', now)
mdm_index_sync(dev, udid, idx)
mdm_event(events, 'type', 'cert_issued', 'udid', udid, 'fp', fp, 'user', user, 'time', now)
return {'ok', revoked}
