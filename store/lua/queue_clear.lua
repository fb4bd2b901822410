-- KEYS: dev q notnow sent (+ the fleet block, fx_begin)   ARGV: -
-- Returns -1 for an unknown device, else how many commands were dropped.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
fx_begin(4)
local n = redis.call('LLEN', KEYS[2])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
fx_hincr('stats', 'queue_depth', -n)
return fx_reply(n)
