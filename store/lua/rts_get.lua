-- KEYS: dev rts_dev rts_fleet events   ARGV: udid now cert_fp
-- ReturnToService: the device's own setting (mdm:rts:{UDID}) or else the
-- fleet's (mdm:rts); off when neither exists.  Returns {'ok', enabled,
-- wifi_profile, mdm_profile, preserve_apps, sealed bootstrap token, source}
-- (false for what is not set), or {identity failure}; logged as an event.
local dev, rd, rf, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local udid, now, fp = ARGV[1], ARGV[2], ARGV[3]
local bad = mdm_ident(dev, fp)
if bad then return {bad} end
redis.call('HSET', dev, 'last_seen', now)
local src, key = 'none', nil
if redis.call('EXISTS', rd) == 1 then src, key = 'device', rd
elseif redis.call('EXISTS', rf) == 1 then src, key = 'fleet', rf end
local c = {false, false, false, false}
if key then c = redis.call('HMGET', key, 'enabled', 'wifi_profile', 'mdm_profile', 'preserve_apps') end
local enabled = c[1] == '1'
local tok = false
if enabled and c[4] == '1' then tok = redis.call('HGET', dev, 'bootstrap_token') end
mdm_event(events, 'type', 'return_to_service', 'udid', udid, 'time', now, 'source', src,
          'enabled', enabled and '1' or '0', 'bootstrap_token', tok and '1' or '0')
return {'ok', enabled and '1' or '0', c[2], c[3], c[4], tok, src}
