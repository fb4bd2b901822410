-- KEYS: dev events   ARGV: udid now cert_fp who
-- GetBootstrapToken (cert_fp set: the device's identity is checked) or an
-- admin's read over REST (cert_fp "", who says who; an event records it).
-- Returns {'ok', sealed or false}, or {identity failure}.
local dev, events = KEYS[1], KEYS[2]
local udid, now, fp, who = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if fp ~= '' then
  local bad = mdm_ident(dev, fp)
  if bad then return {bad} end
  redis.call('HSET', dev, 'last_seen', now)
elseif redis.call('EXISTS', dev) == 0 then
  return {'unknown'}
end
local t = redis.call('HGET', dev, 'bootstrap_token')
mdm_event(events, 'type', 'bootstrap_token_read', 'udid', udid, 'by', who, 'time', now,
          'present', t and '1' or '0')
return {'ok', t}
