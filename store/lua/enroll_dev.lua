-- KEYS: dev (+ the fleet block: fx_begin)   ARGV: udid user now fp revoked_fp...
-- The device record's half of enroll_device.lua in the cluster layout
-- (store_enroll.c: after ota_use.lua, and after the revocation of the
-- identities this enrollment replaces, revoked_fp..., in the registry): the
-- identity just issued (fp) is the one the next Authenticate must present,
-- the record gets its user, and a replaced identity still bound to the
-- record is refused from its next request on (cert_revoked, mdm_ident_dev).
local dev = KEYS[1]
fx_begin(1)
local udid, user, now, fp = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local bound = redis.call('HGET', dev, 'cert_fp')
for i = 5, #ARGV do
  if bound == ARGV[i] then
    redis.call('HSET', dev, 'cert_revoked', bound)
    mdm_poke(udid)
  end
end
local idx = mdm_index_get(dev)
redis.call('HSET', dev, 'udid', udid, 'user', user, 'issued_fp', fp, 'issued_at', now)
fx_index_sync(dev, udid, idx)
fx_event('type', 'cert_issued', 'udid', udid, 'fp', fp, 'user', user, 'time', now)
return fx_reply(1)
