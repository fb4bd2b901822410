-- KEYS: dev (+ the fleet block: fx_begin)   ARGV: udid old_fp new_fp now held
-- The device half of a SCEP renewal in the cluster layout (store_scep.c,
-- after scep_old.lua): when held is the certificate bound to the enrollment
-- it moves to new_fp in this step (no new Authenticate), so the old one is
-- refused from the device's next request on; the identity the next
-- Authenticate must present likewise.  Returns rebound (0|1).
local dev = KEYS[1]
fx_begin(1)
local udid, ofp, nfp, now, held = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local d = redis.call('HMGET', dev, 'state', 'cert_fp', 'issued_fp')
local rebound = d[1] and d[1] ~= 'checked_out' and d[2] == held
if rebound then
  redis.call('HSET', dev, 'cert_fp', nfp, 'renewed_at', now)
  mdm_poke(udid)
end
if rebound or d[3] == held then redis.call('HSET', dev, 'issued_fp', nfp, 'issued_at', now) end
fx_event('type', 'cert_renewed', 'udid', udid, 'fp', nfp, 'old_fp', ofp,
         'rebound', rebound and '1' or '0', 'time', now)
return fx_reply(rebound and 1 or 0)
