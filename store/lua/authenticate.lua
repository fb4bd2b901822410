-- KEYS: dev q notnow devices events
-- ARGV: udid now cert_fp require_issued(1|0) [field value]...
-- Binds the presented certificate to the enrollment.  A certificate from the
-- issued-certificate registry must be a device identity issued to this UDID
-- and not revoked; once a UDID enrolled over the air, only the certificate
-- issued then (issued_fp) is accepted; other certificates only when
-- require_issued is 0.  A new enrollment of a known UDID drops its old queue
-- (the commands were meant for the previous enrollment) but keeps its history.
local dev, q, nn, devices, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local udid, now, fp, require = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local reg = redis.call('HMGET', 'mdm:cert:' .. fp, 'state', 'udid', 'kind')
local d = redis.call('HMGET', dev, 'state', 'issued_fp', 'cert_fp')
if reg[1] then
  if reg[1] ~= 'issued' then return 'revoked' end
  if reg[2] ~= udid or reg[3] ~= 'device' then return 'cert_mismatch' end
end
if d[2] and d[2] ~= fp then return 'cert_mismatch' end
if not reg[1] and require == '1' then return 'not_issued' end
local prev = d[1]
local dropped = 0
if prev then
  dropped = redis.call('LLEN', q)
  redis.call('DEL', q, nn)
  if dropped > 0 then redis.call('HINCRBY', 'mdm:stats', 'queue_depth', -dropped) end
  redis.call('HDEL', dev, 'token', 'push_magic', 'unlock_token', 'token_invalid',
             'enrolled_at', 'checked_out_at')
end
if d[3] and d[3] ~= fp then mdm_revoke(events, d[3], udid, now, 'replaced') end
local idx = mdm_index_get(dev)
redis.call('HSET', dev, 'udid', udid, 'state', 'authenticated', 'cert_fp', fp,
           'authenticated_at', now, 'last_seen', now, unpack(ARGV, 5))
mdm_index_sync(dev, udid, idx)
redis.call('ZADD', devices, now, udid)
mdm_event(events, 'type', 'authenticated', 'udid', udid, 'time', now,
          'reenrollment', prev and '1' or '0', 'dropped', dropped)
return dropped
