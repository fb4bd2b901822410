-- KEYS: enrollment (ddm_d: 8) then, single layout only, the configuration
--       (ddm_g: 9)   ARGV: udid user_id cert_fp now_ms now_iso
-- The tokens endpoint.  Returns {'ok', sync token, timestamp} or {identity
-- failure}.  The cluster layout runs it in three calls (store_ddm.c): this
-- script up to the device's part, ddm_effective.lua on the configuration's
-- slot, then ddm_dev_token.lua.
local udid, uid = ARGV[1], ARGV[2]
local now_reply, d, g, own, user = ddm_open(udid, uid, ARGV[3], ARGV[4])
if now_reply then return now_reply end
local _, token = ddm_effective_g(g, own, uid, user)
return fx_reply({'ok', token, ddm_token_d(d, token, ARGV[5])})
