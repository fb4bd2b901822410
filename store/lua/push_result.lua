-- KEYS: dev pushes q (+ the fleet block, or the outbox: fx_begin)
-- ARGV: udid now outcome status reason apns_id token [repush_after_ms]
-- Records how a push ended.  A token APNs called dead is marked invalid (no
-- more pushes until the next TokenUpdate), unless the device has sent a new
-- token since this push left.
-- The push ledger (issue 19): every outcome on mdm:pushes:{UDID} (the last
-- 50), and for an accepted push while commands wait: push_wait (the first
-- push the device has not answered yet, for the push-to-check-in histogram)
-- and a re-push due time in mdm:repush (NX: a schedule already running keeps
-- its backoff).
local dev, pushes, q = KEYS[1], KEYS[2], KEYS[3]
fx_begin(3)
local udid, now, outcome, status, reason, id, token =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local after = tonumber(ARGV[8] or 0)
if redis.call('EXISTS', dev) == 0 then return fx_reply(0) end
redis.call('XADD', pushes, 'MAXLEN', '~', 50, '*', 'apns_id', id, 'outcome', outcome,
           'status', status, 'reason', reason, 'time', now)
if outcome == 'ok' then
  if redis.call('HSETNX', dev, 'push_wait', now) == 1 then mdm_poke(udid) end
  if after > 0 and redis.call('LLEN', q) > 0 then
    fx_zadd_nx('repush', tonumber(now) + after, udid)
  end
end
fx_rate('push', outcome)
redis.call('HSET', dev, 'last_push_at', now, 'last_push_outcome', outcome,
           'last_push_status', status, 'last_push_reason', reason)
if outcome == 'ok' then
  redis.call('HSET', dev, 'last_push_id', id)
  return fx_reply(1)
end
if outcome == 'bad_token' and redis.call('HGET', dev, 'token') == token then
  redis.call('HSET', dev, 'token_invalid', now)
end
fx_event('type', 'push_failed', 'udid', udid, 'time', now, 'outcome', outcome,
         'status', status, 'reason', reason)
return fx_reply(1)
