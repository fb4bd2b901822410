-- KEYS: dev q notnow devices events   ARGV: udid now cert_fp [field value]...
-- A new enrollment of a known UDID drops its old queue (the commands were
-- meant for the previous enrollment) but keeps its history.
local dev, q, nn, devices, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local udid, now, fp = ARGV[1], ARGV[2], ARGV[3]
local prev = redis.call('HGET', dev, 'state')
local dropped = 0
if prev then
  dropped = redis.call('LLEN', q)
  redis.call('DEL', q, nn)
  redis.call('HDEL', dev, 'token', 'push_magic', 'unlock_token', 'token_invalid',
             'enrolled_at', 'checked_out_at')
end
local idx = mdm_index_get(dev)
redis.call('HSET', dev, 'udid', udid, 'state', 'authenticated', 'cert_fp', fp,
           'authenticated_at', now, 'last_seen', now, unpack(ARGV, 4))
mdm_index_sync(dev, udid, idx)
redis.call('ZADD', devices, now, udid)
mdm_event(events, 'type', 'authenticated', 'udid', udid, 'time', now,
          'reenrollment', prev and '1' or '0', 'dropped', dropped)
return dropped
