-- KEYS: cert dev events
-- ARGV: udid fp now cert_serial user
-- A certificate SCEP issued for a new enrollment (a PKCSReq with a good
-- challenge): registered as a device identity of the UDID (its CN), and
-- recorded as the identity the UDID's next Authenticate must present
-- (issued_fp), as over-the-air enrollment does.  The certificate bound now
-- stays bound until that Authenticate (which revokes it).
local cert, dev, events = KEYS[1], KEYS[2], KEYS[3]
local udid, fp, now, serial, user = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
redis.call('HSET', cert, 'udid', udid, 'user', user, 'kind', 'device', 'state', 'issued',
           'issued', now, 'cert_serial', serial, 'source', 'scep')
redis.call('HSET', dev, 'udid', udid, 'issued_fp', fp, 'issued_at', now)
if user ~= '' then redis.call('HSET', dev, 'user', user) end
mdm_event(events, 'type', 'cert_issued', 'udid', udid, 'fp', fp, 'source', 'scep',
          'user', user, 'time', now)
return 'ok'
