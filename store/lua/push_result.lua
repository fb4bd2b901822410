-- KEYS: dev events   ARGV: udid now outcome status reason apns_id token
-- Records how a push ended.  A token APNs called dead is marked invalid (no
-- more pushes until the next TokenUpdate), unless the device has sent a new
-- token since this push left.
local dev, events = KEYS[1], KEYS[2]
local udid, now, outcome, status, reason, id, token =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if redis.call('EXISTS', dev) == 0 then return 0 end
redis.call('HSET', dev, 'last_push_at', now, 'last_push_outcome', outcome,
           'last_push_status', status, 'last_push_reason', reason)
if outcome == 'ok' then
  redis.call('HSET', dev, 'last_push_id', id)
  return 1
end
if outcome == 'bad_token' and redis.call('HGET', dev, 'token') == token then
  redis.call('HSET', dev, 'token_invalid', now)
end
mdm_event(events, 'type', 'push_failed', 'udid', udid, 'time', now, 'outcome', outcome,
          'status', status, 'reason', reason)
return 1
