-- KEYS: the record of each device or channel (mdm:dev:{UDID}[:<user>]; in
--   the cluster layout all in one slot: mdmd makes one call per slot)
-- ARGV: their ids, in the same order
-- Returns {{udid, token, push_magic, topic}...} for the devices that can be
-- woken: known, not checked out, with a token APNs has not rejected.
local out = {}
for i = 1, #ARGV do
  local d = redis.call('HMGET', KEYS[i], 'state', 'token', 'push_magic', 'topic', 'token_invalid')
  if d[1] and d[1] ~= 'checked_out' and d[2] and d[3] and not d[5] then
    out[#out + 1] = {ARGV[i], d[2], d[3], d[4] or ''}
  end
end
return out
