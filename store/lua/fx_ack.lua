-- KEYS: a device's fleet-write outbox (mdm:fx:{<hash tag>})   ARGV: seq
-- fleet_apply.lua applied the entries up to seq: they leave the outbox (the
-- counter field "seq" stays).
local top = tonumber(ARGV[1])
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if f ~= 'seq' and tonumber(f) <= top then redis.call('HDEL', KEYS[1], f) end
end
return 1
