-- KEYS: cmd (mdm:cmd:<UUID>)   ARGV: plist request_type now ttl_s
-- Cluster layout (store_queue.c): the command body, stored or compared by a call of its
-- own before any queue is touched (the device scripts run in the devices' slots, and
-- never touch it).  0: the UUID is stored with another body (a conflict: nothing is
-- queued); 1: stored now or before with this body, its TTL renewed.
local old = redis.call('HGET', KEYS[1], 'plist')
if old and old ~= ARGV[1] then return 0 end
if not old then
  redis.call('HSET', KEYS[1], 'plist', ARGV[1], 'request_type', ARGV[2], 'created', ARGV[3],
             'targets', 0)
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
