-- KEYS: dev q notnow devices events
-- ARGV: udid now cert_fp require_issued(1|0) cn_differs(1|0) [field value]...
-- Binds the presented certificate to the enrollment.  A certificate from the
-- issued-certificate registry must be a device identity issued to this UDID
-- and not revoked; once a UDID enrolled over the air, only the certificate
-- issued then (issued_fp) is accepted; other certificates only when
-- require_issued is 0.  A certificate whose CN is not the UDID
-- (cn_differs) is accepted only from the registry with bind=authenticate
-- (SCEP, CN not a UDID): unbound, it binds to this UDID now and becomes its
-- issued_fp, as a SCEP certificate with CN = UDID does when it is issued;
-- bound, only to that UDID.  It may not take over a device that another user
-- enrolled and that has not checked out (the holder of some user's challenge
-- is not that device's owner).  A new enrollment of a known UDID drops its old
-- queue (the commands were meant for the previous enrollment) but keeps its
-- history.  The same Authenticate again (state still authenticated, same
-- certificate: its answer was lost, or the device started over before its
-- first TokenUpdate) is the same enrollment: nothing dropped, revoked or
-- written to the events again; returns 0.
local dev, q, nn, devices, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local udid, now, fp, require = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ckey = 'mdm:cert:' .. fp
local reg = redis.call('HMGET', ckey, 'state', 'udid', 'kind', 'bind', 'user')
local d = redis.call('HMGET', dev, 'state', 'issued_fp', 'cert_fp')
local binds_now = false
if ARGV[5] == '1' and reg[4] ~= 'authenticate' then return 'cn_mismatch' end
if reg[1] then
  if reg[1] ~= 'issued' then return 'revoked' end
  if reg[3] ~= 'device' then return 'cert_mismatch' end
  binds_now = reg[2] == '' and reg[4] == 'authenticate'
  if reg[2] ~= udid and not binds_now then return 'cert_mismatch' end
end
if d[2] and d[2] ~= fp and not binds_now then return 'cert_mismatch' end
if binds_now and mdm_owned_by_other(dev, reg[5]) then return 'cert_mismatch' end
if not reg[1] and require == '1' then return 'not_issued' end
if d[1] == 'authenticated' and d[3] == fp and not binds_now then
  local idx = mdm_index_get(dev)
  redis.call('HSET', dev, 'authenticated_at', now, 'last_seen', now, unpack(ARGV, 6))
  mdm_index_sync(dev, udid, idx)
  redis.call('ZADD', devices, now, udid)
  return 0
end
if binds_now then
  redis.call('HSET', ckey, 'udid', udid, 'bound_at', now)
  redis.call('HSET', dev, 'issued_fp', fp, 'issued_at', now)
  if reg[5] and reg[5] ~= '' then redis.call('HSET', dev, 'user', reg[5]) end
  mdm_event(events, 'type', 'cert_bound', 'udid', udid, 'fp', fp, 'time', now)
end
local prev = d[1]
local dropped = 0
if prev then
  dropped = redis.call('LLEN', q)
  redis.call('DEL', q, nn)
  if dropped > 0 then redis.call('HINCRBY', 'mdm:stats', 'queue_depth', -dropped) end
  redis.call('HDEL', dev, 'token', 'push_magic', 'unlock_token', 'token_invalid',
             'enrolled_at', 'checked_out_at', 'enroll_unanswered')
end
mdm_end_channels(events, udid, now)
if d[3] and d[3] ~= fp then mdm_revoke(events, d[3], udid, now, 'replaced') end
local idx, os = mdm_index_get(dev), mdm_os_get(dev)
redis.call('HSET', dev, 'udid', udid, 'state', 'authenticated', 'cert_fp', fp,
           'authenticated_at', now, 'last_seen', now, unpack(ARGV, 6))
mdm_index_sync(dev, udid, idx)
mdm_os_sync(dev, os)
redis.call('ZADD', devices, now, udid)
mdm_event(events, 'type', 'authenticated', 'udid', udid, 'time', now,
          'reenrollment', prev and '1' or '0', 'dropped', dropped)
return dropped
