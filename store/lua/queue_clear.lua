-- KEYS: dev q notnow   ARGV: -   Returns -1 for an unknown device, else how
-- many commands were dropped.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local n = redis.call('LLEN', KEYS[2])
redis.call('DEL', KEYS[2], KEYS[3], (string.gsub(KEYS[2], '^mdm:q:', 'mdm:sent:', 1)))
if n > 0 then redis.call('HINCRBY', 'mdm:stats', 'queue_depth', -n) end
return n
