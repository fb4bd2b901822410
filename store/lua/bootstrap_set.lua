-- KEYS: dev events   ARGV: udid now cert_fp sealed awaiting
-- SetBootstrapToken: sealed is the token as ca_seal made it (AES-256-GCM,
-- never the token itself); "" clears it (Apple: an absent or empty token
-- means remove it).  awaiting: the message's AwaitingConfiguration, "" if
-- absent.
local dev, events = KEYS[1], KEYS[2]
local udid, now, fp, sealed, awaiting = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local bad = mdm_ident(dev, fp)
if bad then return bad end
if sealed == '' then
  redis.call('HDEL', dev, 'bootstrap_token')
  redis.call('HSET', dev, 'bootstrap_token_at', now, 'last_seen', now)
  mdm_event(events, 'type', 'bootstrap_token_cleared', 'udid', udid, 'time', now)
else
  redis.call('HSET', dev, 'bootstrap_token', sealed, 'bootstrap_token_at', now, 'last_seen', now)
  mdm_event(events, 'type', 'bootstrap_token_escrowed', 'udid', udid, 'time', now)
end
if awaiting ~= '' then redis.call('HSET', dev, 'awaiting_configuration', awaiting) end
return 'ok'
