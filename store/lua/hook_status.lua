-- KEYS: events dead   ARGV: group...   JSON {"dead": n, "groups": {group:
-- {"pending": n, "lag": n, "replay": n}}}: per target, entries read and not
-- acknowledged, entries not yet read, dead letters queued for replay.
local info = {}
if redis.call('EXISTS', KEYS[1]) == 1 then
  for _, gi in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local o = {}
    for i = 1, #gi, 2 do o[gi[i]] = gi[i + 1] end
    info[o.name] = o
  end
end
local groups = {}
for i = 1, #ARGV do
  local o = info[ARGV[i]] or {}
  local lag = o.lag
  if type(lag) ~= 'number' then lag = -1 end
  groups[ARGV[i]] = {pending = o.pending or 0, lag = lag,
                     replay = redis.call('XLEN', 'mdm:hook:replay:' .. ARGV[i])}
end
return cjson.encode({dead = redis.call('XLEN', KEYS[2]), groups = groups,
                     trimmed = tonumber(redis.call('HGET', 'mdm:stats', 'webhook_trimmed') or 0)})
