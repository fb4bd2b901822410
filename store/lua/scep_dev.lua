-- KEYS: dev   ARGV: udid fp now user
-- scep_issue.lua's device half in the cluster layout (store_scep.c): the
-- identity a new SCEP enrollment of udid got is the one its next
-- Authenticate must present, unless another user owns the enrollment.
-- Returns 'ok' or 'cert_mismatch'.
local dev = KEYS[1]
local udid, fp, now, user = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if mdm_owned_by_other(dev, user) then return 'cert_mismatch' end
redis.call('HSET', dev, 'udid', udid, 'issued_fp', fp, 'issued_at', now)
if user ~= '' then redis.call('HSET', dev, 'user', user) end
return 'ok'
