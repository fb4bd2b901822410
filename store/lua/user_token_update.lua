-- KEYS: channel dev channels [cert] (+ the fleet block: fx_begin)
--   cert: the registry's prefix key, single layout only (mdm_ident_dev)
-- ARGV: id udid user now cert_fp [field value]...
-- A TokenUpdate on a user channel ("<UDID>:<user>"): the device must be
-- enrolled and the request come with its identity; the channel's record
-- (mdm:dev:{UDID}:<user>) gets its own token and push magic.  Returns
-- 'enrolled' when the channel begins (or begins again after it ended), else
-- 'ok', or the device's identity failure.
local ch, dev, set = KEYS[1], KEYS[2], KEYS[3]
local cert = not MDM_CLUSTER and KEYS[4] or nil
fx_begin(4)
local id, udid, user, now, fp = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local bad = mdm_ident_dev(dev, fp, cert)
if bad then return fx_reply(bad) end
if redis.call('HGET', dev, 'state') ~= 'enrolled' then return fx_reply('unknown') end
local st = redis.call('HGET', ch, 'state')
redis.call('HSET', ch, 'udid', id, 'device', udid, 'user_id', user, 'last_seen', now,
           'token_updated_at', now, unpack(ARGV, 6))
redis.call('HDEL', ch, 'token_invalid')
redis.call('SADD', set, user)
if st ~= 'enrolled' then
  redis.call('HSET', ch, 'state', 'enrolled', 'enrolled_at', now)
  redis.call('HDEL', ch, 'checked_out_at')
  fx_event('type', 'user_channel_enrolled', 'udid', udid, 'user', user, 'time', now)
  return fx_reply('enrolled')
end
return fx_reply('ok')
