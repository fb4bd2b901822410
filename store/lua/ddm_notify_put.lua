-- KEYS: dev q notnow ddm:en (the device's; a user channel's are these .. ':' .. UserID,
--       the same slot)   ARGV: now iso {uid uuid token time}...
-- Cluster layout, the last call of ddm_notify (store_ddm_notify.c): queues
-- each enrollment's DeclarativeManagement command (its body stored before,
-- by its own call), replacing one of an earlier walk still queued, unless
-- the enrollment was sent this token meanwhile or left.  Returns {queued,
-- {udid-or-channel, token, push_magic, topic}..., {uuid no longer used}...}.
local dev0, q0, nn0, en0 = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = ARGV[1]
fx_begin(4)
local function k(base, uid)
  if uid == '' then return base end
  return base .. ':' .. uid
end
local udid = string.match(dev0, '{(.*)}')
local queued, push, gone = 0, {}, {}
for i = 3, #ARGV - 3, 4 do
  local uid, uuid, token, time = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local dev, q, en = k(dev0, uid), k(q0, uid), k(en0, uid)
  local d = redis.call('HMGET', dev, 'state', 'token', 'push_magic', 'topic', 'token_invalid')
  local e = redis.call('HMGET', en, 'notified', 'pending', 'token')
  if d[1] ~= 'enrolled' or e[1] == token then
    gone[#gone + 1] = uuid
  else
    if e[3] ~= token then redis.call('HSET', en, 'token', token, 'token_time', time) end
    if e[2] and redis.call('LREM', q, 0, e[2]) > 0 then
      fx_hincr('stats', 'queue_depth', -1)
      redis.call('SREM', k(nn0, uid), e[2])
      gone[#gone + 1] = e[2]
    end
    redis.call('RPUSH', q, uuid)
    mdm_poke(udid)
    fx_hincr('stats', 'queue_depth', 1)
    redis.call('HSET', en, 'notified', token, 'pending', uuid, 'notified_at', now)
    queued = queued + 1
    if d[2] and d[3] and not d[5] then push[#push + 1] = {k(udid, uid), d[2], d[3], d[4] or ''} end
  end
end
return fx_reply({queued, push, gone})
