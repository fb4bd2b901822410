-- KEYS: dev [cert] (+ the fleet block: fx_begin)   ARGV: udid now cert_fp who
--   cert: the registry's prefix key, single layout only (mdm_ident_dev)
-- GetBootstrapToken (cert_fp set: the device's identity is checked) or an
-- admin's read over REST (cert_fp "", who says who; an event records it).
-- Returns {'ok', sealed or false}, or {identity failure}.
local dev, cert = KEYS[1], not MDM_CLUSTER and KEYS[2] or nil
fx_begin(2)
local udid, now, fp, who = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if fp ~= '' then
  local bad = mdm_ident_with(dev, fp, cert)
  if bad then return fx_reply({bad}) end
  redis.call('HSET', dev, 'last_seen', now)
elseif redis.call('EXISTS', dev) == 0 then
  return fx_reply({'unknown'})
end
local t = redis.call('HGET', dev, 'bootstrap_token')
fx_event('type', 'bootstrap_token_read', 'udid', udid, 'by', who, 'time', now,
         'present', t and '1' or '0')
return fx_reply({'ok', t})
