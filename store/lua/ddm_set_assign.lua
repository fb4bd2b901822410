-- KEYS: -   ARGV: name now everyone(1|0) ntargets target... user...
-- Replaces a set's assignment: enrollment ids (UDID, or UDID:UserID for a
-- user channel), users (the device channel of devices they enrolled) and
-- everyone (every device channel).  Returns 'not_found', or {unknown...}
-- (unknown users or devices: nothing changed unless it is empty).
local name, now, everyone, nt = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local k = 'mdm:ddm:set:' .. name
if redis.call('EXISTS', k) == 0 then return 'not_found' end
local unknown = {}
for i = 5, 4 + nt do
  local udid = string.match(ARGV[i], '^([^:]+)')
  if redis.call('EXISTS', 'mdm:dev:{' .. udid .. '}') == 0 then unknown[#unknown + 1] = ARGV[i] end
end
for i = 5 + nt, #ARGV do
  if redis.call('EXISTS', 'mdm:user:' .. ARGV[i]) == 0 then unknown[#unknown + 1] = ARGV[i] end
end
if #unknown > 0 then return unknown end
for _, e in ipairs(redis.call('SMEMBERS', k .. ':targets')) do
  local udid, uid = string.match(e, '^([^:]+):?(.*)$')
  redis.call('SREM', ddm_key('sets', udid, uid), name)
end
for _, u in ipairs(redis.call('SMEMBERS', k .. ':users')) do
  redis.call('SREM', 'mdm:ddm:user:' .. u, name)
end
redis.call('DEL', k .. ':targets', k .. ':users')
for i = 5, 4 + nt do
  local udid, uid = string.match(ARGV[i], '^([^:]+):?(.*)$')
  redis.call('SADD', ddm_key('sets', udid, uid), name)
  redis.call('SADD', k .. ':targets', ARGV[i])
end
for i = 5 + nt, #ARGV do
  redis.call('SADD', 'mdm:ddm:user:' .. ARGV[i], name)
  redis.call('SADD', k .. ':users', ARGV[i])
end
if everyone == '1' then
  redis.call('SADD', 'mdm:ddm:everyone', name)
else
  redis.call('SREM', 'mdm:ddm:everyone', name)
end
redis.call('HSET', k, 'everyone', everyone, 'updated', now)
return {}
