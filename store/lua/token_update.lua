-- KEYS: dev devices events   ARGV: udid now cert_fp [field value]...
-- Returns 'enrolled' for the first TokenUpdate after Authenticate, else 'ok',
-- or the identity failure.
local dev, devices, events = KEYS[1], KEYS[2], KEYS[3]
local udid, now, fp = ARGV[1], ARGV[2], ARGV[3]
local bad = mdm_ident(dev, fp)
if bad then return bad end
redis.call('HSET', dev, 'last_seen', now, 'token_updated_at', now, unpack(ARGV, 4))
redis.call('HDEL', dev, 'token_invalid')
redis.call('ZADD', devices, now, udid)
if redis.call('HGET', dev, 'state') == 'authenticated' then
  redis.call('HSET', dev, 'state', 'enrolled', 'enrolled_at', now)
  mdm_event(events, 'type', 'enrolled', 'udid', udid, 'time', now)
  return 'enrolled'
end
return 'ok'
