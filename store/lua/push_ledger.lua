-- KEYS: pushes dev [repush (single layout)]   ARGV: udid count [repush_due (cluster layout)]
-- A device's last pushes, newest first: JSON [{id, apns_id, outcome, status,
-- reason, time}], plus the device's push_wait and push_unanswered.  In the
-- cluster layout mdmd read the device's score in its bucket of mdm:repush
-- first (another slot) and passes it.
local udid = ARGV[1]
local out = {}
for _, e in ipairs(redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT',
                              tonumber(ARGV[2]))) do
  local o = {id = e[1]}
  for i = 1, #e[2], 2 do o[e[2][i]] = e[2][i + 1] end
  o.status = tonumber(o.status)
  o.time = tonumber(o.time)
  out[#out + 1] = o
end
local d = redis.call('HMGET', KEYS[2], 'push_wait', 'push_unanswered',
                     'repush_attempts', 'state')
if not d[4] then return '' end
local r = {push_wait = tonumber(d[1] or 0), push_unanswered = d[2] ~= false,
           repush_attempts = tonumber(d[3] or 0),
           repush_due = tonumber(ARGV[3] or 0)}
if KEYS[3] then r.repush_due = tonumber(redis.call('ZSCORE', KEYS[3], udid) or 0) end
if #out > 0 then r.pushes = out end
return cjson.encode(r)
