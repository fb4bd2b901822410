-- KEYS: cert (mdm:cert:<fp>) (+ the fleet block: fx_begin)   ARGV: fp udid now reason
-- The registry's half of a revocation in the cluster layout, after the
-- device script that decided it (checkout.lua): the entry lives in its own
-- slot.  The device record already refuses the certificate where it matters
-- (cert_revoked, mdm_ident_dev).  Returns 1 when it was revoked now, 0 when
-- it was not an issued certificate (or is revoked already).
local k = KEYS[1]
fx_begin(1)
local fp, udid, now, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HGET', k, 'state') ~= 'issued' then return fx_reply(0) end
redis.call('HSET', k, 'state', 'revoked', 'revoked_at', now, 'revoked_reason', reason)
mdm_poke(udid)
fx_event('type', 'cert_revoked', 'udid', udid, 'fp', fp, 'reason', reason, 'time', now)
return fx_reply(1)
