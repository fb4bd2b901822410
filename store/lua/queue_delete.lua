-- KEYS: dev q notnow sent (+ the fleet block, fx_begin)   ARGV: udid uuid now
-- Takes one command off a device's queue.  Returns -1 for an unknown
-- device, else how many entries went (0: it was not queued there).
local udid, uuid, now = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
fx_begin(4)
local n = redis.call('LREM', KEYS[2], 0, uuid)
if n > 0 then
  redis.call('SREM', KEYS[3], uuid)
  redis.call('HDEL', KEYS[4], uuid)
  fx_hincr('stats', 'queue_depth', -n)
  fx_event('type', 'command_canceled', 'udid', udid, 'uuid', uuid, 'time', now)
end
return fx_reply(n)
