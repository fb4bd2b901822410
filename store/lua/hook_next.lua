-- KEYS: events stats replay   ARGV: group consumer claim_idle_ms [part]
-- The next event a webhook target must deliver, as JSON
-- {"src":"replay"|"group","id":..,"f":{field:value}}, or '' when none.
-- Replayed dead letters go first; then this consumer's own pending entry (a
-- restart continues where it stopped), then one another consumer left idle
-- longer than claim_idle_ms (it died), then the next new one.  The group is
-- created at the stream's end on first use.
-- part (cluster layout, docs/REDIS.md): 'events' looks at one bucket's
-- stream only (KEYS: events stats of the bucket), 'replay' at the replay
-- stream only (KEYS: replay, in {g}); mdmd asks every bucket and the replay
-- stream at once and delivers the oldest (the others stay pending for this
-- consumer, the first thing its next look finds).
local part = ARGV[4] or 'all'
local g, c, idle = ARGV[1], ARGV[2], ARGV[3]
local function flat(f)
  local o = {}
  for i = 1, #f, 2 do o[f[i]] = f[i + 1] end
  return o
end
if part ~= 'events' then
  local rp = KEYS[3]
  if part == 'replay' then rp = KEYS[1] end
  local r = redis.call('XRANGE', rp, '-', '+', 'COUNT', 1)
  if #r > 0 then return cjson.encode({src = 'replay', id = r[1][1], f = flat(r[1][2])}) end
  if part == 'replay' then return '' end
end
local ev, st = KEYS[1], KEYS[2]
pcall(redis.call, 'XGROUP', 'CREATE', ev, g, '$', 'MKSTREAM')
for _ = 1, 100 do
  local e
  local x = redis.call('XREADGROUP', 'GROUP', g, c, 'COUNT', 1, 'STREAMS', ev, '0')
  if x and x[1] and #x[1][2] > 0 then e = x[1][2][1] end
  if not e then
    local a = redis.call('XAUTOCLAIM', ev, g, c, idle, '0-0', 'COUNT', 1)
    if a[2] and #a[2] > 0 then e = a[2][1] end
  end
  if not e then
    x = redis.call('XREADGROUP', 'GROUP', g, c, 'COUNT', 1, 'STREAMS', ev, '>')
    if x and x[1] and #x[1][2] > 0 then e = x[1][2][1] end
  end
  if not e then return '' end
  if e[2] then return cjson.encode({src = 'group', id = e[1], f = flat(e[2])}) end
  -- Trimmed from the stream while pending: nothing left to send.
  redis.call('XACK', ev, g, e[1])
  redis.call('HINCRBY', st, 'webhook_trimmed', 1)
end
return ''
