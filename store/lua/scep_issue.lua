-- KEYS: cert dev events tx
-- ARGV: udid fp now cert_serial user cert_hex tx_ttl_s
-- A certificate SCEP issued for a new enrollment (a PKCSReq with a good
-- challenge).  When its CN is a UDID (udid set): registered as a device
-- identity of that UDID, and recorded as the identity the UDID's next
-- Authenticate must present (issued_fp), as over-the-air enrollment does; the
-- certificate bound now stays bound until that Authenticate (which revokes
-- it).  When its CN is not a UDID (udid ""; a profile Subject such as the
-- literal %HardwareUUID%, which iOS does not substitute): registered unbound
-- with bind=authenticate, and authenticate.lua binds it to the UDID the
-- device reports at its first Authenticate.
-- The certificate is kept in the request's tx record (challenge_take.lua), so
-- that a retry of a request whose answer was lost gets it again; a
-- certificate already recorded there wins ({'again', its DER hex}): one
-- transaction never registers two.
local cert, dev, events, tx = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local udid, fp, now, serial, user = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local have = redis.call('HGET', tx, 'cert')
if have then return {'again', have} end
if udid ~= '' and mdm_owned_by_other(dev, user) then return 'cert_mismatch' end
redis.call('HSET', cert, 'udid', udid, 'user', user, 'kind', 'device', 'state', 'issued',
           'issued', now, 'cert_serial', serial, 'source', 'scep')
if udid == '' then
  redis.call('HSET', cert, 'bind', 'authenticate')
else
  redis.call('HSET', dev, 'udid', udid, 'issued_fp', fp, 'issued_at', now)
  if user ~= '' then redis.call('HSET', dev, 'user', user) end
end
redis.call('HSET', tx, 'owner', user, 'cert', ARGV[6])
redis.call('EXPIRE', tx, tonumber(ARGV[7]))
mdm_event(events, 'type', 'cert_issued', 'udid', udid, 'fp', fp, 'source', 'scep',
          'user', user, 'time', now)
return 'ok'
