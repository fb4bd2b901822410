-- KEYS: -   ARGV: udid user_id cert_fp now_ms now_iso
-- The tokens endpoint.  Returns {'ok', sync token, timestamp} or {identity failure}.
local udid, uid = ARGV[1], ARGV[2]
local bad = ddm_begin(udid, uid, ARGV[3], ARGV[4])
if bad then return {bad} end
local _, token, time = ddm_tokens(udid, uid, ARGV[5])
return {'ok', token, time}
