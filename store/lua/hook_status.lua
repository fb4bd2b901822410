-- KEYS: events stats dead replay:   ARGV: part group...
-- JSON {"dead": n, "trimmed": n, "groups": {group: {"pending": n, "lag": n,
-- "replay": n}}}: per target, entries read and not acknowledged, entries
-- not yet read, dead letters queued for replay (KEYS[4] .. group, the dead
-- letters' slot).  part 'all' (single layout); cluster layout: 'events' is
-- one bucket's stream (KEYS: events stats), 'g' the dead letters and replay
-- streams (KEYS: dead replay:), and mdmd adds the answers up.
local part = ARGV[1]
local info = {}
if part ~= 'g' and redis.call('EXISTS', KEYS[1]) == 1 then
  for _, gi in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local o = {}
    for i = 1, #gi, 2 do o[gi[i]] = gi[i + 1] end
    info[o.name] = o
  end
end
local dead, replay = KEYS[3], KEYS[4]
if part == 'g' then dead, replay = KEYS[1], KEYS[2] end
local groups = {}
for i = 2, #ARGV do
  local o = info[ARGV[i]] or {}
  local lag = o.lag
  if type(lag) ~= 'number' then lag = -1 end
  if part == 'g' then lag = 0 end -- the streams' parts say
  local r = 0
  if part ~= 'events' then r = redis.call('XLEN', replay .. ARGV[i]) end
  groups[ARGV[i]] = {pending = o.pending or 0, lag = lag, replay = r}
end
local out = {groups = groups, dead = 0, trimmed = 0}
if part ~= 'events' then out.dead = redis.call('XLEN', dead) end
if part ~= 'g' then out.trimmed = tonumber(redis.call('HGET', KEYS[2], 'webhook_trimmed') or 0) end
return cjson.encode(out)
