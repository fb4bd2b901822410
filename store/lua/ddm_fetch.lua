-- KEYS: -   ARGV: udid user_id cert_fp now_ms kind identifier
-- The declaration/<kind>/<identifier> endpoint: the declaration's JSON when
-- it is in the enrollment's effective set with that kind.  Returns {'ok',
-- json}, {'ok'} (not the enrollment's: 404, which makes the device drop it)
-- or {identity failure}.
local udid, uid, kind, id = ARGV[1], ARGV[2], ARGV[5], ARGV[6]
local bad = ddm_begin(udid, uid, ARGV[3], ARGV[4])
if bad then return {bad} end
local items = ddm_effective(udid, uid)
for _, it in ipairs(items) do
  if it[1] == id and it[3] == kind then
    return {'ok', redis.call('HGET', 'mdm:ddm:decl:' .. id, 'json')}
  end
end
return {'ok'}
