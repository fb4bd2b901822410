-- KEYS: cert (mdm:cert:<fp>) (+ the fleet block: fx_begin)   ARGV: fp udid now
-- ota_register.lua's check of the OTA identity an earlier try of the same
-- phase 1 registered, in the cluster layout (the entry is a slot of its
-- own): still issued, it never reached the device and is revoked now
-- (reason 'retried'; 1); used for phase 2 meanwhile, this is no retry of a
-- lost answer (-1: refused); no entry, or revoked as 'retried' already (a
-- try that stopped after revoking it): 0.
local k = KEYS[1]
fx_begin(1)
local fp, udid, now = ARGV[1], ARGV[2], ARGV[3]
local o = redis.call('HMGET', k, 'state', 'revoked_reason')
if o[1] == 'issued' then
  redis.call('HSET', k, 'state', 'revoked', 'revoked_at', now, 'revoked_reason', 'retried')
  mdm_poke(udid)
  fx_event('type', 'cert_revoked', 'udid', udid, 'fp', fp, 'reason', 'retried', 'time', now)
  return fx_reply(1)
end
if o[1] and not (o[1] == 'revoked' and o[2] == 'retried') then return fx_reply(-1) end
return fx_reply(0)
