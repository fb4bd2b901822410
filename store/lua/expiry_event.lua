-- KEYS: events   ARGV: what not_after threshold days_left now
-- One cert_expiring event per certificate (what, not_after) and threshold.
local k = 'mdm:expiry:' .. ARGV[1] .. ':' .. ARGV[2] .. ':' .. ARGV[3]
if not redis.call('SET', k, ARGV[5], 'NX', 'EX', 90 * 86400) then return 0 end
mdm_event(KEYS[1], 'type', 'cert_expiring', 'udid', '', 'what', ARGV[1], 'threshold_days', ARGV[3],
          'days_left', ARGV[4], 'not_after', ARGV[2], 'time', ARGV[5])
return 1
