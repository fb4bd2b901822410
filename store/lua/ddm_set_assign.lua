-- KEYS: the configuration (ddm_g: 9), then, single layout only, two
--       prefixes: dev: and ddm:sets: (+ {UDID}[:UserID] is a device's record
--       and an enrollment's set of sets: each device's own slot, so only the
--       single layout touches them here)
-- ARGV: [cluster layout: dry(1|0)] name now everyone(1|0) ntargets target... user...
-- Replaces a set's assignment: enrollment ids (UDID, or UDID:UserID for a
-- user channel), users (the device channel of devices they enrolled) and
-- everyone (every device channel).  Returns 'not_found', or {unknown...}
-- (unknown users or devices: nothing changed unless it is empty).  Cluster
-- layout (store_ddm.c): mdmd checked the devices first (dry 1 when some are
-- unknown: only the answer); the set's side is changed here, and {'', old
-- target...} tells mdmd which enrollments' sets to move afterwards.
local g = ddm_g(1)
local o = MDM_CLUSTER and 1 or 0
local dry = MDM_CLUSTER and ARGV[1] == '1'
local name, now, everyone, nt = ARGV[1 + o], ARGV[2 + o], ARGV[3 + o], tonumber(ARGV[4 + o])
local first, last = 5 + o, 4 + o + nt
local k = g.set .. name
if redis.call('EXISTS', k) == 0 then return 'not_found' end
local unknown = {}
local function ekey(prefix, e)
  local udid, uid = string.match(e, '^([^:]+):?(.*)$')
  if uid ~= '' then return prefix .. '{' .. udid .. '}:' .. uid end
  return prefix .. '{' .. udid .. '}'
end
if not MDM_CLUSTER then
  for i = first, last do
    local udid = string.match(ARGV[i], '^([^:]+)')
    if redis.call('EXISTS', KEYS[10] .. '{' .. udid .. '}') == 0 then
      unknown[#unknown + 1] = ARGV[i]
    end
  end
end
for i = last + 1, #ARGV do
  if redis.call('EXISTS', g.users .. ARGV[i]) == 0 then unknown[#unknown + 1] = ARGV[i] end
end
if #unknown > 0 or dry then return unknown end
local old = redis.call('SMEMBERS', k .. ':targets')
if not MDM_CLUSTER then
  for _, e in ipairs(old) do redis.call('SREM', ekey(KEYS[11], e), name) end
end
for _, u in ipairs(redis.call('SMEMBERS', k .. ':users')) do
  redis.call('SREM', g.user .. u, name)
end
redis.call('DEL', k .. ':targets', k .. ':users')
for i = first, last do
  if not MDM_CLUSTER then redis.call('SADD', ekey(KEYS[11], ARGV[i]), name) end
  redis.call('SADD', k .. ':targets', ARGV[i])
end
for i = last + 1, #ARGV do
  redis.call('SADD', g.user .. ARGV[i], name)
  redis.call('SADD', k .. ':users', ARGV[i])
end
if everyone == '1' then
  redis.call('SADD', g.everyone, name)
else
  redis.call('SREM', g.everyone, name)
end
redis.call('HSET', k, 'everyone', everyone, 'updated', now)
if MDM_CLUSTER then
  table.insert(old, 1, '')
  return old
end
return {}
