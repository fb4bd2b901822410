-- KEYS: events   ARGV: udid uuid now
-- Takes one command off a device's queue.  Returns -1 for an unknown
-- device, else how many entries went (0: it was not queued there).
local udid, uuid, now = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', mdm_key('dev', udid)) == 0 then return -1 end
local n = redis.call('LREM', mdm_key('q', udid), 0, uuid)
if n > 0 then
  redis.call('SREM', mdm_key('notnow', udid), uuid)
  redis.call('HDEL', mdm_key('sent', udid), uuid)
  redis.call('HINCRBY', 'mdm:stats', 'queue_depth', -n)
  mdm_event(KEYS[1], 'type', 'command_canceled', 'udid', udid, 'uuid', uuid, 'time', now)
end
return n
