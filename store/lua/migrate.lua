-- KEYS: devices events   ARGV: now [udid nfields field value...]...
-- POST /v1/migrate: devices enrolled with another server, recorded without a
-- device round trip.  A record is made for every UDID that has none (or one
-- that checked out): state enrolled with a push token, else authenticated,
-- migrated 1 and no cert_fp: the first request with a certificate of the MDM
-- CA binds it (mdm_ident_device, prelude.lua).  Returns {created, {udid of a
-- live record left alone...}}.
local devices, events = KEYS[1], KEYS[2]
local now = ARGV[1]
local i, created, skipped = 2, 0, {}
while i <= #ARGV do
  local udid, n = ARGV[i], tonumber(ARGV[i + 1])
  local dev = mdm_key('dev', udid)
  local st = redis.call('HGET', dev, 'state')
  if st and st ~= 'checked_out' then
    skipped[#skipped + 1] = udid
  else
    local idx = mdm_index_get(dev)
    local f, state = {}, 'authenticated'
    for j = 0, n - 1 do
      local k = ARGV[i + 2 + 2 * j]
      f[#f + 1] = k
      f[#f + 1] = ARGV[i + 3 + 2 * j]
      if k == 'token' then state = 'enrolled' end
    end
    local left = redis.call('LLEN', mdm_key('q', udid))
    if left > 0 then redis.call('HINCRBY', 'mdm:stats', 'queue_depth', -left) end
    redis.call('DEL', dev, mdm_key('q', udid), mdm_key('notnow', udid))
    redis.call('HSET', dev, 'udid', udid, 'state', state, 'migrated', '1', 'migrated_at', now,
               'authenticated_at', now, 'last_seen', now, unpack(f))
    if state == 'enrolled' then redis.call('HSET', dev, 'enrolled_at', now) end
    mdm_index_sync(dev, udid, idx)
    redis.call('ZADD', devices, now, udid)
    mdm_event(events, 'type', 'migrated', 'udid', udid, 'time', now, 'state', state)
    created = created + 1
  end
  i = i + 2 + 2 * n
end
return {created, skipped}
