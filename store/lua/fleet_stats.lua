-- KEYS: -   ARGV: now stale_ms list_stale [charts]
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
-- charts = 1 (the dashboard): devices by OS version (mdm:os) and the last
-- 60 minutes of command results and push outcomes (mdm:rate:*), oldest
-- first: [{"t": minute start ms, "n": {outcome: count}}]; 121 small reads.
if ARGV[4] == '1' then
  local function hash(k)
    local t, o = redis.call('HGETALL', k), {}
    for i = 1, #t, 2 do o[t[i]] = tonumber(t[i + 1]) end
    return o
  end
  r.os_versions = hash('mdm:os')
  local m0 = math.floor(now / 60000)
  local cmd, push = {}, {}
  for m = m0 - 59, m0 do
    cmd[#cmd + 1] = {t = m * 60000, n = hash('mdm:rate:cmd:' .. m)}
    push[#push + 1] = {t = m * 60000, n = hash('mdm:rate:push:' .. m)}
  end
  r.commands_per_minute, r.pushes_per_minute = cmd, push
end
return cjson.encode(r)
