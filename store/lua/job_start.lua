-- KEYS: job cmd   ARGV: ttl_s cmd_ttl_s plist request_type now [field value]...
-- Creates a bulk job record (mdm:job:<id>) and stores the command it queues,
-- in one step, so that a CommandUUID already stored with another body is
-- refused (0) before the job is answered, as enqueue.lua refuses it.
local job, cmd = KEYS[1], KEYS[2]
local old = redis.call('HGET', cmd, 'plist')
if old and old ~= ARGV[3] then return 0 end
if not old then
  redis.call('HSET', cmd, 'plist', ARGV[3], 'request_type', ARGV[4], 'created', ARGV[5],
             'targets', 0)
  redis.call('EXPIRE', cmd, tonumber(ARGV[2]))
end
redis.call('HSET', job, unpack(ARGV, 6))
redis.call('EXPIRE', job, tonumber(ARGV[1]))
return 1
