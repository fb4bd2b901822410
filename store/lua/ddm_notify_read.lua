-- KEYS: dev channels ddm:en ddm:sets (the device's: mdm:dev:{UDID}, mdm:channels:{UDID},
--       mdm:ddm:en:{UDID}, mdm:ddm:sets:{UDID}; a user channel's are these .. ':' .. UserID,
--       the same slot)   ARGV: uid ('' the device and all its user channels; else that one)
-- Cluster layout, the first call of ddm_notify (store_ddm_notify.c): the
-- enrollments of one device that may be sent a DeclarativeManagement
-- command (enrolled, and they spoke DDM or their OS can), each
-- {uid, notified, token, token_time, user, {own set...}} ('' for none);
-- mdmd then computes their sync tokens on {g} (ddm_effective.lua).
local dev, chans, en0, sets0 = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
-- OS releases that brought DDM (Apple's schema: supportedOS of the protocol).
local function capable()
  local d = redis.call('HMGET', dev, 'product_name', 'os_version')
  local major = tonumber(string.match(d[2] or '', '^(%d+)')) or 0
  local p = d[1] or ''
  if p:find('^iPhone') or p:find('^iPad') or p:find('^iPod') then return major >= 15 end
  if p:find('^Mac') then return major >= 13 end
  if p:find('^AppleTV') then return major >= 16 end
  if p:find('^Watch') then return major >= 10 end
  return p:find('^RealityDevice') ~= nil
end
local function k(base, uid)
  if uid == '' then return base end
  return base .. ':' .. uid
end
local can = capable()
local user = redis.call('HGET', dev, 'user') or ''
local out = {}
local function one(uid)
  local state = redis.call('HGET', k(dev, uid), 'state')
  local e = redis.call('HMGET', k(en0, uid), 'notified', 'token', 'token_time', 'last_seen')
  if state ~= 'enrolled' or not (e[4] or can) then return end
  out[#out + 1] = {uid, e[1] or '', e[2] or '', e[3] or '', user,
                   redis.call('SMEMBERS', k(sets0, uid))}
end
if ARGV[1] ~= '' then
  one(ARGV[1])
else
  one('')
  for _, ch in ipairs(redis.call('SMEMBERS', chans)) do one(ch) end
end
return out
