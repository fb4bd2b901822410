-- KEYS: -   ARGV: udid limit
-- A device's (or user channel's) queue, oldest first, as JSON
-- [{uuid, request_type, created, plist, state, sent_at}]: state is 'notnow'
-- (answered NotNow, waits for the next connect), 'sent' (handed to the
-- device, no answer yet) or 'queued'.  '' for an unknown device.
local udid, limit = ARGV[1], tonumber(ARGV[2])
if redis.call('EXISTS', mdm_key('dev', udid)) == 0 then return '' end
local q, nn, sent = mdm_key('q', udid), mdm_key('notnow', udid), mdm_key('sent', udid)
local out = {}
for _, id in ipairs(redis.call('LRANGE', q, 0, limit - 1)) do
  local c = redis.call('HMGET', 'mdm:cmd:' .. id, 'request_type', 'created', 'plist')
  local at = redis.call('HGET', sent, id)
  local st = 'queued'
  if redis.call('SISMEMBER', nn, id) == 1 then st = 'notnow' elseif at then st = 'sent' end
  out[#out + 1] = {uuid = id, request_type = c[1] or '', created = tonumber(c[2] or 0),
                   plist = c[3] or '', state = st, sent_at = tonumber(at or 0)}
end
if #out == 0 then return '[]' end
return cjson.encode(out)
