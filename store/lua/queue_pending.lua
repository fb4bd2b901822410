-- KEYS: dev q notnow sent cmd   ARGV: limit
-- A device's (or user channel's) queue, oldest first, as JSON
-- [{uuid, request_type, created, plist, state, sent_at}]: state is 'notnow'
-- (answered NotNow, waits for the next connect), 'sent' (handed to the
-- device, no answer yet) or 'queued'.  '' for an unknown device.
-- cmd: the prefix of the command bodies' keys, 'mdm:cmd:' (single layout, one
-- node).  Cluster layout: no cmd (the bodies are in slots of their own) and
-- request_type, created and plist left empty: mdmd reads each body with its
-- own HMGET and fills them in (store_queue.c).
local limit = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then return '' end
local q, nn, sent, cmd = KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local out = {}
for _, id in ipairs(redis.call('LRANGE', q, 0, limit - 1)) do
  local c = {}
  if cmd then c = redis.call('HMGET', cmd .. id, 'request_type', 'created', 'plist') end
  local at = redis.call('HGET', sent, id)
  local st = 'queued'
  if redis.call('SISMEMBER', nn, id) == 1 then st = 'notnow' elseif at then st = 'sent' end
  out[#out + 1] = {uuid = id, request_type = c[1] or '', created = tonumber(c[2] or 0),
                   plist = c[3] or '', state = st, sent_at = tonumber(at or 0)}
end
if #out == 0 then return '[]' end
return cjson.encode(out)
