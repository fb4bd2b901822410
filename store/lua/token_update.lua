-- KEYS: dev [cert] (+ the fleet block: fx_begin)
--   cert: the registry's prefix key, single layout only (mdm_ident_dev)
-- ARGV: udid now cert_fp provision [field value]...
-- Returns 'enrolled' for the first TokenUpdate after Authenticate, 'provision'
-- for a later one while provisioning is still pending, else 'ok', or the
-- identity failure.
-- provision '1': the first TokenUpdate marks provisioning pending in the same
-- step that marks the device enrolled (provision_pending on the record, and
-- mdm:provision scored by when), so that a failure to queue it afterwards is
-- retried (provision.lua clears both) instead of forgotten.
-- The first TokenUpdate also sets enroll_unanswered: until mdmd has answered
-- it (it deletes the field as it answers, mdm_checkin.c), the same message
-- sent again because its answer was lost is told 'enrolled' again, so that
-- what mdmd does once per enrollment (count it, log it, its declarative
-- management, provisioning) is done once, not never; for 600 s at most.
local dev, cert = KEYS[1], not MDM_CLUSTER and KEYS[2] or nil
fx_begin(2)
local udid, now, fp, prov = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local bad = mdm_ident_with(dev, fp, cert)
if bad then return fx_reply(bad) end
redis.call('HSET', dev, 'last_seen', now, 'token_updated_at', now, unpack(ARGV, 5))
redis.call('HDEL', dev, 'token_invalid')
fx_zadd('devices', now, udid)
if redis.call('HGET', dev, 'state') == 'authenticated' then
  redis.call('HSET', dev, 'state', 'enrolled', 'enrolled_at', now)
  mdm_poke(udid)
  if prov then
    redis.call('HSET', dev, 'provision_pending', now)
    fx_zadd('provision', now, udid)
  end
  redis.call('HSET', dev, 'enroll_unanswered', now)
  fx_event('type', 'enrolled', 'udid', udid, 'time', now)
  return fx_reply('enrolled')
end
local ua = redis.call('HGET', dev, 'enroll_unanswered')
if ua and tonumber(now) - tonumber(ua) <= 600000 then return fx_reply('enrolled') end
if prov and redis.call('HEXISTS', dev, 'provision_pending') == 1 then return fx_reply('provision') end
return fx_reply('ok')
