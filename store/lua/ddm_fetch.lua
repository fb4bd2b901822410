-- KEYS: enrollment (ddm_d: 8) then, single layout only, the configuration
--       (ddm_g: 9)   ARGV: udid user_id cert_fp now_ms kind identifier
-- The declaration/<kind>/<identifier> endpoint: the declaration's JSON when
-- it is in the enrollment's effective set with that kind.  Returns {'ok',
-- json}, {'ok'} (not the enrollment's: 404, which makes the device drop it)
-- or {identity failure}.  The cluster layout runs it in two calls
-- (store_ddm.c): this script up to the device's part, then
-- ddm_effective.lua on the configuration's slot.
local udid, uid, kind, id = ARGV[1], ARGV[2], ARGV[5], ARGV[6]
local now_reply, d, g, own, user = ddm_open(udid, uid, ARGV[3], ARGV[4])
if now_reply then return now_reply end
local items = ddm_effective_g(g, own, uid, user)
for _, it in ipairs(items) do
  if it[1] == id and it[3] == kind then
    return fx_reply({'ok', redis.call('HGET', g.decl .. id, 'json')})
  end
end
return fx_reply({'ok'})
