-- KEYS: dev events   ARGV: udid now outcome status reason apns_id token [repush_after_ms]
-- Records how a push ended.  A token APNs called dead is marked invalid (no
-- more pushes until the next TokenUpdate), unless the device has sent a new
-- token since this push left.
-- The push ledger (issue 19): every outcome on mdm:pushes:{UDID} (the last
-- 50), and for an accepted push while commands wait: push_wait (the first
-- push the device has not answered yet, for the push-to-check-in histogram)
-- and a re-push due time in mdm:repush (NX: a schedule already running keeps
-- its backoff).
local function mdm_push_ledger(udid, now, outcome, status, reason, id, after)
  redis.call('XADD', mdm_key('pushes', udid), 'MAXLEN', '~', 50, '*', 'apns_id', id,
             'outcome', outcome, 'status', status, 'reason', reason, 'time', now)
  if outcome ~= 'ok' then return end
  redis.call('HSETNX', mdm_key('dev', udid), 'push_wait', now)
  if after > 0 and redis.call('LLEN', mdm_key('q', udid)) > 0 then
    redis.call('ZADD', 'mdm:repush', 'NX', tonumber(now) + after, udid)
  end
end
local dev, events = KEYS[1], KEYS[2]
local udid, now, outcome, status, reason, id, token =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if redis.call('EXISTS', dev) == 0 then return 0 end
mdm_push_ledger(udid, now, outcome, status, reason, id, tonumber(ARGV[8] or 0))
mdm_rate('push', now, outcome)
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
