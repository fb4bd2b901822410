-- KEYS: old new dev events cert dev_prefix (the registry's prefix mdm:cert:, and mdm:dev:)
-- ARGV: udid old_fp new_fp now cert_serial retry_grace_ms
-- A SCEP renewal: the identity old_fp (it signed the request) is replaced by
-- new_fp.  When old_fp is the certificate bound to the UDID's enrollment, the
-- enrollment moves to new_fp in this same step (no new Authenticate), so the
-- device's next request with the new identity is accepted and the old one is
-- refused from now on.  old_fp is revoked (reason renewed).
-- A device that never got the answer renews again with the old identity: that
-- is allowed for retry_grace_ms, as long as the enrollment still holds what
-- the first renewal gave (which is then revoked instead).
-- Returns {'ok', rebound (0|1)} or {reason}: revoked, cert_mismatch.
-- udid "" (the CN is not a UDID): the new certificate takes over the old
-- one's binding (bind=authenticate, and the UDID once it is bound).
local old, new, dev, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
-- Single layout only: the cluster layout makes the steps as calls in turn,
-- each on its own slot (store_scep.c: scep_old, scep_cert, scep_rebind).
local udid, ofp, nfp, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local o = redis.call('HMGET', old, 'state', 'revoked_reason', 'renewed_to', 'revoked_at', 'user',
                     'udid', 'bind')
if udid == '' then
  if o[7] ~= 'authenticate' then return {'cert_mismatch'} end
  udid = o[6] or ''
  dev = KEYS[6] .. '{' .. udid .. '}'
elseif o[6] and o[6] ~= udid then
  return {'cert_mismatch'}
end
local d = {false, false, false}
if udid ~= '' then d = redis.call('HMGET', dev, 'state', 'cert_fp', 'issued_fp') end
local held = ofp
if o[1] == 'revoked' then
  local t = tonumber(o[4]) or 0
  if o[2] ~= 'renewed' or not o[3] or (o[3] ~= d[2] and o[3] ~= d[3]) or
     tonumber(now) - t > tonumber(ARGV[6]) then
    return {'revoked'}
  end
  held = o[3]
  redis.call('HSET', KEYS[5] .. held, 'state', 'revoked', 'revoked_at', now,
             'revoked_reason', 'renewal_retried')
  mdm_event(events, 'type', 'cert_revoked', 'udid', udid, 'fp', held,
            'reason', 'renewal_retried', 'time', now)
else
  redis.call('HSET', old, 'state', 'revoked', 'revoked_at', now, 'revoked_reason', 'renewed')
  mdm_event(events, 'type', 'cert_revoked', 'udid', udid, 'fp', ofp, 'reason', 'renewed',
            'time', now)
end
redis.call('HSET', old, 'renewed_to', nfp)
local user = o[5] or ''
redis.call('HSET', new, 'udid', udid, 'user', user, 'kind', 'device', 'state', 'issued',
           'issued', now, 'cert_serial', ARGV[5], 'source', 'scep', 'renewed_from', ofp)
if o[7] == 'authenticate' then redis.call('HSET', new, 'bind', 'authenticate') end
local rebound = d[1] and d[1] ~= 'checked_out' and d[2] == held
mdm_poke(udid) -- a certificate of the device was revoked above
if rebound then redis.call('HSET', dev, 'cert_fp', nfp, 'renewed_at', now) end
if rebound or d[3] == held then redis.call('HSET', dev, 'issued_fp', nfp, 'issued_at', now) end
mdm_event(events, 'type', 'cert_renewed', 'udid', udid, 'fp', nfp, 'old_fp', ofp,
          'rebound', rebound and '1' or '0', 'time', now)
return {'ok', rebound and 1 or 0}
