-- KEYS: dev [cert] (+ the fleet block: fx_begin)   ARGV: udid now cert_fp sealed awaiting
--   cert: the registry's prefix key, single layout only (mdm_ident_dev)
-- SetBootstrapToken: sealed is the token as ca_seal made it (AES-256-GCM,
-- never the token itself); "" clears it (Apple: an absent or empty token
-- means remove it).  awaiting: the message's AwaitingConfiguration, "" if
-- absent.
local dev, cert = KEYS[1], not MDM_CLUSTER and KEYS[2] or nil
fx_begin(2)
local udid, now, fp, sealed, awaiting = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local bad = mdm_ident_with(dev, fp, cert)
if bad then return fx_reply(bad) end
if sealed == '' then
  redis.call('HDEL', dev, 'bootstrap_token')
  redis.call('HSET', dev, 'bootstrap_token_at', now, 'last_seen', now)
  fx_event('type', 'bootstrap_token_cleared', 'udid', udid, 'time', now)
else
  redis.call('HSET', dev, 'bootstrap_token', sealed, 'bootstrap_token_at', now, 'last_seen', now)
  fx_event('type', 'bootstrap_token_escrowed', 'udid', udid, 'time', now)
end
if awaiting ~= '' then redis.call('HSET', dev, 'awaiting_configuration', awaiting) end
return fx_reply('ok')
