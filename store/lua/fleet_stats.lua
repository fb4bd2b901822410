-- KEYS: devices repush stats pushlat os [rate:cmd x60 rate:push x60, oldest
--       minute first: with charts]   ARGV: now stale_ms list_stale [charts]
-- Fleet numbers for /metrics and the dashboard, as JSON: devices, stale (not
-- seen for stale_ms), repush_scheduled, the push-to-check-in histogram
-- (mdm:pushlat), queue_depth; with list_stale > 0, up to that many stale
-- UDIDs (oldest first) with their last_seen.  In the cluster layout mdmd runs
-- it on each bucket's keys and adds the answers up (store_fleet.c).
local now, stale_ms, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cut = now - stale_ms
local devices, repush, stats, pushlat, os = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local r = {devices = redis.call('ZCARD', devices),
           stale = redis.call('ZCOUNT', devices, '-inf', '(' .. cut),
           repush_scheduled = redis.call('ZCARD', repush),
           queue_depth = tonumber(redis.call('HGET', stats, 'queue_depth') or 0)}
local h = redis.call('HGETALL', pushlat)
local lat = {}
for i = 1, #h, 2 do lat[h[i]] = tonumber(h[i + 1]) end
r.pushlat = lat
if n > 0 then
  local s = redis.call('ZRANGEBYSCORE', devices, '-inf', '(' .. cut, 'WITHSCORES', 'LIMIT', 0, n)
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
  r.os_versions = hash(os)
  local m0 = math.floor(now / 60000)
  local cmd, push = {}, {}
  for i = 0, 59 do
    local m = m0 - 59 + i
    cmd[#cmd + 1] = {t = m * 60000, n = hash(KEYS[6 + i])}
    push[#push + 1] = {t = m * 60000, n = hash(KEYS[66 + i])}
  end
  r.commands_per_minute, r.pushes_per_minute = cmd, push
end
return cjson.encode(r)
