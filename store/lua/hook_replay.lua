-- KEYS: dead replay:   ARGV: id...  (none: every entry)
-- Moves dead letters to their target's replay stream (KEYS[2] .. <group>:
-- mdm:hook:replay:<group>, in the dead letters' slot, {g} in the cluster
-- layout), which the deliverer drains before new events.  Returns how many
-- moved.
local dead = KEYS[1]
local ents = {}
if #ARGV == 0 then
  ents = redis.call('XRANGE', dead, '-', '+', 'COUNT', 10000)
else
  for i = 1, #ARGV do
    local r = redis.call('XRANGE', dead, ARGV[i], ARGV[i])
    if #r > 0 then ents[#ents + 1] = r[1] end
  end
end
local n = 0
for _, e in ipairs(ents) do
  local f = {}
  for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
  if f.group and f.payload then
    redis.call('XADD', KEYS[2] .. f.group, '*', 'event_id', f.event_id or '', 'payload', f.payload)
    n = n + 1
  end
  redis.call('XDEL', dead, e[1])
end
return n
