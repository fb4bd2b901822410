-- KEYS: dev   ARGV: cert_fp now
-- Only the identity check of a device request (UserAuthenticate): {'ok'} or
-- {identity failure}.
local bad = mdm_ident(KEYS[1], ARGV[1])
if bad then return {bad} end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[2])
return {'ok'}
