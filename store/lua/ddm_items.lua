-- KEYS: enrollment (ddm_d: 8) then, single layout only, the configuration
--       (ddm_g: 9)   ARGV: udid user_id cert_fp now_ms now_iso
-- The declaration-items endpoint.  Returns {'ok', sync token,
-- {{identifier, type, kind, server token}...}} or {identity failure}.  The
-- cluster layout runs it in three calls, as ddm_tokens.lua.
local udid, uid = ARGV[1], ARGV[2]
local now_reply, d, g, own, user = ddm_open(udid, uid, ARGV[3], ARGV[4])
if now_reply then return now_reply end
local items, token = ddm_effective_g(g, own, uid, user)
ddm_token_d(d, token, ARGV[5])
redis.call('HSET', d.en, 'items_token', token, 'items_at', ARGV[4])
return fx_reply({'ok', token, items})
