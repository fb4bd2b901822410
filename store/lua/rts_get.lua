-- KEYS: dev rts_dev [rts_fleet cert] (+ the fleet block, or the outbox: fx_begin)
--   rts_fleet, cert: the fleet's setting (mdm:rts) and the registry's prefix
--   key, single layout only: in the cluster layout they live in other slots,
--   and mdmd passes the fleet's setting as it read it just before.
-- ARGV: udid now cert_fp [fleet: exists (1|0), then enabled wifi_profile
--   mdm_profile preserve_apps, each "1<value>" or "0" for none; cluster layout]
-- ReturnToService: the device's own setting (mdm:rts:{UDID}) or else the
-- fleet's (mdm:rts); off when neither exists.  Returns {'ok', enabled,
-- wifi_profile, mdm_profile, preserve_apps, sealed bootstrap token, source}
-- (false for what is not set), or {identity failure}; logged as an event.
local dev, rd = KEYS[1], KEYS[2]
local rf, cert = not MDM_CLUSTER and KEYS[3] or nil, not MDM_CLUSTER and KEYS[4] or nil
fx_begin(4)
local udid, now, fp = ARGV[1], ARGV[2], ARGV[3]
local bad = mdm_ident_with(dev, fp, cert)
if bad then return fx_reply({bad}) end
redis.call('HSET', dev, 'last_seen', now)
local names = {'enabled', 'wifi_profile', 'mdm_profile', 'preserve_apps'}
local src, c = 'none', {false, false, false, false}
if redis.call('EXISTS', rd) == 1 then
  src, c = 'device', redis.call('HMGET', rd, unpack(names))
elseif rf and redis.call('EXISTS', rf) == 1 then
  src, c = 'fleet', redis.call('HMGET', rf, unpack(names))
elseif not rf and ARGV[4] == '1' then
  src = 'fleet'
  for i = 1, 4 do
    local v = ARGV[4 + i]
    c[i] = string.sub(v, 1, 1) == '1' and string.sub(v, 2) or false
  end
end
local enabled = c[1] == '1'
local tok = false
if enabled and c[4] == '1' then tok = redis.call('HGET', dev, 'bootstrap_token') end
fx_event('type', 'return_to_service', 'udid', udid, 'time', now, 'source', src,
         'enabled', enabled and '1' or '0', 'bootstrap_token', tok and '1' or '0')
return fx_reply({'ok', enabled and '1' or '0', c[2], c[3], c[4], tok, src})
