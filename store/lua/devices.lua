-- KEYS: devices dev:   (dev: a prefix, + {UDID} is a device's record; the
--       single layout only: the cluster layout merges the buckets in
--       store_fanout.c and reads each record on its own slot)
-- ARGV: offset limit state(or '') scan_budget
-- Newest-seen first.  Returns {next_offset (-1 at the end), total, {record}...};
-- a state filter reads at most scan_budget entries per call.
local offset, limit, state = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local budget = tonumber(ARGV[4])
local total = redis.call('ZCARD', KEYS[1])
local out, scanned = {}, 0
while #out < limit and scanned < budget do
  local ids = redis.call('ZREVRANGE', KEYS[1], offset, offset + limit - 1)
  if #ids == 0 then return {-1, total, out} end
  for _, u in ipairs(ids) do
    offset = offset + 1
    scanned = scanned + 1
    local dev = KEYS[2] .. '{' .. u .. '}'
    local rec = redis.call('HGETALL', dev)
    if #rec > 0 and (state == '' or redis.call('HGET', dev, 'state') == state) then
      out[#out + 1] = rec
      if #out == limit then break end
    end
  end
end
if offset >= total then offset = -1 end
return {offset, total, out}
