-- KEYS: claim (mdm:pushclaim:{UDID}, the device's slot)   ARGV: window_ms
-- With workers (core/super.h) every worker coalesces its own wake-ups; this
-- makes it one push per device and window across them: the first worker to
-- flush a device claims it for window_ms (1), the others fold theirs into
-- that push (0).  A worker that lost the claim had its enqueue in before the
-- winner's push was sent, so the device fetches that command too.
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', math.max(tonumber(ARGV[1]), 1)) then return 1 end
return 0
