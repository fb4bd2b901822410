-- KEYS: ota_cert (mdm:cert:<ota fp>)   ARGV: udid now fp retry_ms
-- The OTA identity's half of enroll_device.lua in the cluster layout (the
-- registry entry is a slot of its own; store_enroll.c makes the other steps
-- after it): the identity is used up here, single use, so of two phase 2
-- requests racing with one OTA identity one gets 'ota_used'.  A retry of a
-- phase 2 whose answer was lost (retry_until not past) passes, and the device
-- identity that earlier try got is returned, to be revoked (reason
-- 'retried') before the new one is registered.
-- Returns {'ok', fingerprint to revoke or ''} or {'ota_used'}.
local ota = KEYS[1]
local udid, now, fp = ARGV[1], ARGV[2], ARGV[3]
local o = redis.call('HMGET', ota, 'state', 'udid', 'kind', 'revoked_reason', 'retry_until',
                     'device_fp')
if o[2] ~= udid or o[3] ~= 'ota' then return {'ota_used'} end
local retried = ''
if o[1] == 'issued' then
  redis.call('HSET', ota, 'state', 'revoked', 'revoked_at', now, 'revoked_reason', 'used')
elseif o[1] == 'revoked' and o[4] == 'used' and tonumber(o[5] or '0') >= tonumber(now) then
  if o[6] and o[6] ~= fp then retried = o[6] end
else
  return {'ota_used'}
end
redis.call('HSET', ota, 'device_fp', fp, 'retry_until', tonumber(now) + tonumber(ARGV[4]))
return {'ok', retried}
