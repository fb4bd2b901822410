-- KEYS: dev q notnow for each device, then (single layout) the fleet block
-- ARGV: now [udid nfields field value...]...
-- POST /v1/migrate: devices enrolled with another server, recorded without a
-- device round trip.  A record is made for every UDID that has none (or one
-- that checked out): state enrolled with a push token, else authenticated,
-- migrated 1 and no cert_fp: the first request with a certificate of the MDM
-- CA binds it (mdm_ident_dev, prelude.lua).  Returns {created, {udid of a
-- live record left alone...}}.  In the cluster layout mdmd sends one call
-- per device (its keys are in its UDID's slot); in the single layout one for
-- the whole request.
local now = ARGV[1]
local i, d, created, skipped = 2, 0, 0, {}
local ndev = 0
while i <= #ARGV do
  ndev = ndev + 1
  i = i + 2 + 2 * tonumber(ARGV[i + 1])
end
fx_begin(3 * ndev)
i = 2
while i <= #ARGV do
  local udid, n = ARGV[i], tonumber(ARGV[i + 1])
  local dev, q, nn = KEYS[3 * d + 1], KEYS[3 * d + 2], KEYS[3 * d + 3]
  d = d + 1
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
    fx_hincr('stats', 'queue_depth', -redis.call('LLEN', q))
    redis.call('DEL', dev, q, nn)
    mdm_poke(udid)
    redis.call('HSET', dev, 'udid', udid, 'state', state, 'migrated', '1', 'migrated_at', now,
               'authenticated_at', now, 'last_seen', now, unpack(f))
    if state == 'enrolled' then redis.call('HSET', dev, 'enrolled_at', now) end
    fx_index_sync(dev, udid, idx)
    fx_zadd('devices', now, udid)
    fx_event('type', 'migrated', 'udid', udid, 'time', now, 'state', state)
    created = created + 1
  end
  i = i + 2 + 2 * n
end
return fx_reply({created, skipped})
