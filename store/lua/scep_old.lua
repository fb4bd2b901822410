-- KEYS: old (mdm:cert:<old fp>) (+ the fleet block: fx_begin)
-- ARGV: old_fp new_fp now udid held
-- The gate of a SCEP renewal in the cluster layout (store_scep.c decided
-- from its reads before): held = old_fp, the old identity is still issued
-- (or has no entry) and is revoked now (reason renewed); held another (a renewal retried within
-- its grace), the old one still names held as what it was renewed to.
-- Either way it names new_fp from now on.  Returns 1, or 0 when the entry
-- changed since the reads (a renewal racing: the request fails and is
-- retried).
local k = KEYS[1]
fx_begin(1)
local ofp, nfp, now, udid, held = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local o = redis.call('HMGET', k, 'state', 'renewed_to')
if held == ofp then
  if o[1] == 'revoked' then return fx_reply(0) end
  redis.call('HSET', k, 'state', 'revoked', 'revoked_at', now, 'revoked_reason', 'renewed')
  mdm_poke(udid)
  fx_event('type', 'cert_revoked', 'udid', udid, 'fp', ofp, 'reason', 'renewed', 'time', now)
elseif o[2] ~= held then
  return fx_reply(0)
end
redis.call('HSET', k, 'renewed_to', nfp)
return fx_reply(1)
