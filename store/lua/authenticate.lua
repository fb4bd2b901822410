-- KEYS: dev q notnow channels [cert] (+ the fleet block: fx_begin)
--   cert: the registry's prefix key, single layout only
-- ARGV: udid now cert_fp require_issued(1|0) cn_differs(1|0) [registry] [field value]...
--   registry (cluster layout): the entry of cert_fp as mdmd read it just
--   before (state udid kind bind user, each "1<value>" or "0" for none); the
--   registry's writes (binding it, revoking the replaced certificate) are
--   mdmd's after this script (cert_bind.lua, cert_revoke.lua), so the reply
--   there is {reply, fingerprint to bind or '', fingerprint to revoke or ''}.
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
local dev, q, nn, chans = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cert = not MDM_CLUSTER and KEYS[5] or nil
fx_begin(5)
local udid, now, fp, require = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local reg, first = {}, 6
if cert then
  reg = redis.call('HMGET', cert .. fp, 'state', 'udid', 'kind', 'bind', 'user')
else
  for i = 1, 5 do
    local v = ARGV[5 + i]
    reg[i] = string.sub(v, 1, 1) == '1' and string.sub(v, 2) or false
  end
  first = 11
end
local bind_fp, revoke_fp = '', ''
local function answer(v)
  if cert then return fx_reply(v) end
  return fx_reply({v, bind_fp, revoke_fp})
end
local d = redis.call('HMGET', dev, 'state', 'issued_fp', 'cert_fp')
local binds_now = false
if ARGV[5] == '1' and reg[4] ~= 'authenticate' then return answer('cn_mismatch') end
if reg[1] then
  if reg[1] ~= 'issued' then return answer('revoked') end
  if reg[3] ~= 'device' then return answer('cert_mismatch') end
  binds_now = reg[2] == '' and reg[4] == 'authenticate'
  if reg[2] ~= udid and not binds_now then return answer('cert_mismatch') end
end
if d[2] and d[2] ~= fp and not binds_now then return answer('cert_mismatch') end
if binds_now and mdm_owned_by_other(dev, reg[5]) then return answer('cert_mismatch') end
if not reg[1] and require == '1' then return answer('not_issued') end
if d[1] == 'authenticated' and d[3] == fp and not binds_now then
  local idx = mdm_index_get(dev)
  redis.call('HSET', dev, 'authenticated_at', now, 'last_seen', now, unpack(ARGV, first))
  fx_index_sync(dev, udid, idx)
  fx_zadd('devices', now, udid)
  return answer(0)
end
if binds_now then
  if cert then redis.call('HSET', cert .. fp, 'udid', udid, 'bound_at', now) else bind_fp = fp end
  redis.call('HSET', dev, 'issued_fp', fp, 'issued_at', now)
  if reg[5] and reg[5] ~= '' then redis.call('HSET', dev, 'user', reg[5]) end
  fx_event('type', 'cert_bound', 'udid', udid, 'fp', fp, 'time', now)
end
local prev = d[1]
local dropped = 0
if prev then
  dropped = redis.call('LLEN', q)
  redis.call('DEL', q, nn)
  fx_hincr('stats', 'queue_depth', -dropped)
  redis.call('HDEL', dev, 'token', 'push_magic', 'unlock_token', 'token_invalid',
             'enrolled_at', 'checked_out_at', 'enroll_unanswered')
end
fx_end_channels(chans, dev, q, nn, udid, now)
if d[3] and d[3] ~= fp then
  if cert then fx_revoke(cert, d[3], udid, now, 'replaced') else revoke_fp = d[3] end
end
local idx, os = mdm_index_get(dev), mdm_os_get(dev)
mdm_poke(udid)
redis.call('HSET', dev, 'udid', udid, 'state', 'authenticated', 'cert_fp', fp,
           'authenticated_at', now, 'last_seen', now, unpack(ARGV, first))
fx_index_sync(dev, udid, idx)
fx_os_sync(dev, os)
fx_zadd('devices', now, udid)
fx_event('type', 'authenticated', 'udid', udid, 'time', now,
         'reenrollment', prev and '1' or '0', 'dropped', dropped)
return answer(dropped)
