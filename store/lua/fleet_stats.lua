-- KEYS: -   ARGV: now stale_ms list_stale
-- Fleet numbers for /metrics and the dashboard, as JSON: devices, stale (not
-- seen for stale_ms), repush_scheduled, the push-to-check-in histogram
-- (mdm:pushlat), queue_depth; with list_stale > 0, up to that many stale
-- UDIDs (oldest first) with their last_seen.
local now, stale_ms, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cut = now - stale_ms
local r = {devices = redis.call('ZCARD', 'mdm:devices'),
           stale = redis.call('ZCOUNT', 'mdm:devices', '-inf', '(' .. cut),
           repush_scheduled = redis.call('ZCARD', 'mdm:repush'),
           queue_depth = tonumber(redis.call('HGET', 'mdm:stats', 'queue_depth') or 0)}
local h = redis.call('HGETALL', 'mdm:pushlat')
local lat = {}
for i = 1, #h, 2 do lat[h[i]] = tonumber(h[i + 1]) end
r.pushlat = lat
if n > 0 then
  local s = redis.call('ZRANGEBYSCORE', 'mdm:devices', '-inf', '(' .. cut, 'WITHSCORES', 'LIMIT',
                       0, n)
  local l = {}
  for i = 1, #s, 2 do l[#l + 1] = {udid = s[i], last_seen = tonumber(s[i + 1])} end
  if #l > 0 then r.stale_devices = l end
end
return cjson.encode(r)
