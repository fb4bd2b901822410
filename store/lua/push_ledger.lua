-- KEYS: -   ARGV: udid count
-- A device's last pushes, newest first: JSON [{id, apns_id, outcome, status,
-- reason, time}], plus the device's push_wait and push_unanswered.
local udid = ARGV[1]
local out = {}
for _, e in ipairs(redis.call('XREVRANGE', mdm_key('pushes', udid), '+', '-', 'COUNT',
                              tonumber(ARGV[2]))) do
  local o = {id = e[1]}
  for i = 1, #e[2], 2 do o[e[2][i]] = e[2][i + 1] end
  o.status = tonumber(o.status)
  o.time = tonumber(o.time)
  out[#out + 1] = o
end
local d = redis.call('HMGET', mdm_key('dev', udid), 'push_wait', 'push_unanswered',
                     'repush_attempts', 'state')
if not d[4] then return '' end
local r = {push_wait = tonumber(d[1] or 0), push_unanswered = d[2] ~= false,
           repush_attempts = tonumber(d[3] or 0),
           repush_due = tonumber(redis.call('ZSCORE', 'mdm:repush', udid) or 0)}
if #out > 0 then r.pushes = out end
return cjson.encode(r)
