-- KEYS: job events   ARGV: uuid cursor count now
-- One step of cancelling a command everywhere: scans about count devices of
-- mdm:devices from cursor and takes uuid off their queues and their user
-- channels' queues.  Progress goes to the job record.  Returns JSON
-- {cursor, scanned, canceled}; cursor '0' when the scan is complete.
local job, events = KEYS[1], KEYS[2]
local uuid, now = ARGV[1], ARGV[4]
local r = redis.call('ZSCAN', 'mdm:devices', ARGV[2], 'COUNT', tonumber(ARGV[3]))
local scanned, canceled = 0, 0
for i = 1, #r[2], 2 do
  local u = r[2][i]
  scanned = scanned + 1
  local ids = {u}
  for _, usr in ipairs(redis.call('SMEMBERS', 'mdm:channels:{' .. u .. '}')) do
    ids[#ids + 1] = u .. ':' .. usr
  end
  for _, id in ipairs(ids) do
    local n = redis.call('LREM', mdm_key('q', id), 0, uuid)
    if n > 0 then
      redis.call('SREM', mdm_key('notnow', id), uuid)
      redis.call('HDEL', mdm_key('sent', id), uuid)
      redis.call('HINCRBY', 'mdm:stats', 'queue_depth', -n)
      mdm_event(events, 'type', 'command_canceled', 'udid', id, 'uuid', uuid, 'time', now)
      canceled = canceled + n
    end
  end
end
redis.call('HINCRBY', job, 'done', scanned)
redis.call('HINCRBY', job, 'canceled', canceled)
redis.call('HSET', job, 'cursor', r[1], 'updated', now)
if r[1] == '0' then redis.call('HSET', job, 'state', 'done') end
redis.call('EXPIRE', job, 604800)
return cjson.encode({cursor = r[1], scanned = scanned, canceled = canceled})
