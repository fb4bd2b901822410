-- KEYS: mark (mdm:expiry:<what>:<not_after>:<threshold>, in {g} in the
--   cluster layout) (+ the fleet block: fx_begin)
-- ARGV: what not_after threshold days_left now
-- One cert_expiring event per certificate (what, not_after) and threshold.
local k = KEYS[1]
fx_begin(1)
if not redis.call('SET', k, ARGV[5], 'NX', 'EX', 90 * 86400) then return fx_reply(0) end
fx_event('type', 'cert_expiring', 'udid', '', 'what', ARGV[1], 'threshold_days', ARGV[3],
         'days_left', ARGV[4], 'not_after', ARGV[2], 'time', ARGV[5])
return fx_reply(1)
