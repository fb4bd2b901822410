-- KEYS: -   ARGV: udid user_id cert_fp now_ms now_iso
-- The declaration-items endpoint.  Returns {'ok', sync token,
-- {{identifier, type, kind, server token}...}} or {identity failure}.
local udid, uid = ARGV[1], ARGV[2]
local bad = ddm_begin(udid, uid, ARGV[3], ARGV[4])
if bad then return {bad} end
local items, token = ddm_tokens(udid, uid, ARGV[5])
redis.call('HSET', ddm_key('en', udid, uid), 'items_token', token, 'items_at', ARGV[4])
return {'ok', token, items}
