-- KEYS: devices dev   ARGV: n
-- The push topics of the n devices seen last (mdm:devices by last_seen) that
-- are not checked out, as JSON {topic: count}: what a renewed push
-- certificate's topic is compared with.  A sample, not a scan: n is small,
-- and a fleet enrolled under one topic shows it in any sample.
-- Single layout only: dev is the prefix of the device records' keys,
-- 'mdm:dev:' (one node).  The cluster layout merges the buckets' newest and
-- reads each record by its own call (store_queue.c).
local n = tonumber(ARGV[1])
local r = {}
for _, u in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, n - 1)) do
  local d = redis.call('HMGET', KEYS[2] .. '{' .. u .. '}', 'state', 'topic')
  if d[1] and d[1] ~= 'checked_out' and d[2] and d[2] ~= '' then
    r[d[2]] = (r[d[2]] or 0) + 1
  end
end
if next(r) == nil then return '{}' end
return cjson.encode(r)
