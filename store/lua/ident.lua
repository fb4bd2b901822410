-- KEYS: dev [cert]   ARGV: cert_fp now
--   cert: the registry's prefix key, single layout only (mdm_ident_dev)
-- Only the identity check of a device request (UserAuthenticate): {'ok'} or
-- {identity failure}.
local bad = mdm_ident_with(KEYS[1], ARGV[1], not MDM_CLUSTER and KEYS[2] or nil)
if bad then return {bad} end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[2])
return {'ok'}
