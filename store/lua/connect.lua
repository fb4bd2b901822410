-- The hot path: one call per device request on the command endpoint.
-- KEYS: dev q notnow res devices events
-- ARGV: udid now cert_fp status uuid result error_chain history_len history_max_bytes
--       [field value]...
-- Returns {'ok'} (nothing to send), {'ok', uuid, plist} or {identity failure}.
-- udid may be a user channel, "<UDID>:<user>" (KEYS are then the channel's).
-- The device answered a push (issue 19): the time since the first push it had
-- not answered goes to the push-to-check-in histogram (mdm:pushlat, seconds
-- buckets), and its re-push schedule ends.
local function mdm_push_answered(dev, udid, now)
  local pw = redis.call('HGET', dev, 'push_wait')
  if not pw then return end
  redis.call('HDEL', dev, 'push_wait', 'repush_attempts', 'push_unanswered')
  redis.call('ZREM', 'mdm:repush', udid)
  local ms = tonumber(now) - tonumber(pw)
  if ms < 0 then ms = 0 end
  for _, le in ipairs({1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}) do
    if ms <= le * 1000 then redis.call('HINCRBY', 'mdm:pushlat', 'le_' .. le, 1) end
  end
  redis.call('HINCRBY', 'mdm:pushlat', 'count', 1)
  redis.call('HINCRBY', 'mdm:pushlat', 'sum_ms', ms)
end
-- History (docs/REDIS.md, "Command history"): at most len entries (exact
-- MAXLEN on the XADD) and max_bytes of results and error chains per device,
-- oldest dropped first.  The record's hist_bytes is an upper bound of what
-- the stream holds (MAXLEN's trimming does not subtract), so two calls do
-- it per command; only when it passes max_bytes is the stream counted again
-- and cut.  A result that alone is over max_bytes is kept without its body
-- (result_bytes: its size).
local function mdm_history_add(dev, res, len, max_bytes, uuid, rt, status, now, queued, result,
                               chain)
  local extra = {}
  if #result + #chain > max_bytes then
    extra = {'result_bytes', #result}
    result = ''
    if #chain > max_bytes then chain = '' end
  end
  redis.call('XADD', res, 'MAXLEN', len, '*', 'uuid', uuid, 'request_type', rt, 'status', status,
             'time', now, 'queued', queued, 'result', result, 'error_chain', chain, unpack(extra))
  if redis.call('HINCRBY', dev, 'hist_bytes', #result + #chain) <= max_bytes then return end
  local es, sizes, total = redis.call('XRANGE', res, '-', '+'), {}, 0
  for i, e in ipairs(es) do
    local f, n = e[2], 0
    for k = 1, #f - 1, 2 do
      if f[k] == 'result' or f[k] == 'error_chain' then n = n + #f[k + 1] end
    end
    sizes[i] = n
    total = total + n
  end
  local cut = 0 -- the entry just added always stays
  while total > max_bytes and cut < #es - 1 do
    cut = cut + 1
    total = total - sizes[cut]
  end
  if cut > 0 then redis.call('XTRIM', res, 'MINID', es[cut + 1][1]) end
  redis.call('HSET', dev, 'hist_bytes', total)
end
local dev, q, nn, res, devices, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local udid, now, fp, status, uuid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local bad = mdm_ident(dev, fp)
if bad then return {bad} end
if #ARGV > 9 then
  -- Only the fields whose value changed are written (a device answers
  -- DeviceInformation with the same name and serial number every time), and
  -- the search index is touched only when an indexed field is among them.
  local names = {}
  for i = 10, #ARGV - 1, 2 do names[#names + 1] = ARGV[i] end
  local old = redis.call('HMGET', dev, unpack(names))
  local set, reindex, oschg = {'last_seen', now, 'info_updated_at', now}, false, false
  for i, f in ipairs(names) do
    local v = ARGV[9 + 2 * i]
    if old[i] ~= v then
      set[#set + 1] = f
      set[#set + 1] = v
      reindex = reindex or f == 'serial_number' or f == 'device_name'
      oschg = oschg or f == 'os_version'
    end
  end
  local idx, os = reindex and mdm_index_get(dev), mdm_os_get(dev)
  redis.call('HSET', dev, unpack(set))
  -- The search index lists devices; a user channel's answers stay on its record.
  -- The OS count (mdm:os) is kept up when the version changed, or was never
  -- counted (a device enrolled before the count existed).
  if not string.find(udid, ':', 1, true) then
    if reindex then mdm_index_sync(dev, udid, idx) end
    if oschg or not os then mdm_os_sync(dev, os) end
  end
else
  redis.call('HSET', dev, 'last_seen', now)
end
-- mdm:devices lists devices; a user channel's last_seen is on its record.
if not string.find(udid, ':', 1, true) then redis.call('ZADD', devices, now, udid) end
mdm_push_answered(dev, udid, now)

if status == 'NotNow' then
  if uuid ~= '' and redis.call('LPOS', q, uuid) then
    redis.call('SADD', nn, uuid)
    mdm_rate('cmd', now, 'NotNow')
  end
else
  if status ~= 'Idle' then
    -- Acknowledged, Error, CommandFormatError: finished, never sent again.
    local queued = redis.call('LREM', q, 1, uuid)
    -- Never HINCRBY by -0: Redis refuses "-0", and a script that fails half
    -- way keeps what it already did (the LREM above), losing the result.
    if queued > 0 then redis.call('HINCRBY', 'mdm:stats', 'queue_depth', -queued) end
    -- Not queued: maybe the same report again, because the answer to the
    -- first one was lost (the device retries it).  A result already in the
    -- recent history is not recorded twice.
    local again = false
    if queued == 0 then
      for _, e in ipairs(redis.call('XREVRANGE', res, '+', '-', 'COUNT', 20)) do
        local f = e[2]
        for i = 1, #f - 1, 2 do
          if f[i] == 'uuid' then again = again or (f[i + 1] == uuid) break end
        end
      end
    end
    redis.call('HDEL', mdm_key('sent', udid), uuid)
    if not again then
      local rt = redis.call('HGET', 'mdm:cmd:' .. uuid, 'request_type') or ''
      mdm_history_add(dev, res, tonumber(ARGV[8]), tonumber(ARGV[9]), uuid, rt, status, now,
                      queued, ARGV[6], ARGV[7])
      mdm_event(events, 'type', 'command_finished', 'udid', udid, 'uuid', uuid,
                'request_type', rt, 'status', status, 'time', now)
      mdm_rate('cmd', now, status)
      if rt == 'DeviceConfigured' and status == 'Acknowledged' then
        -- Setup Assistant goes on: the device is no longer awaiting configuration.
        redis.call('HSET', dev, 'awaiting_configuration', 'false', 'configured_at', now)
        mdm_event(events, 'type', 'device_configured', 'udid', udid, 'time', now)
      end
    end
  end
  redis.call('DEL', nn)
end

-- The oldest queued command not marked NotNow (after a non-NotNow report the
-- marks are gone, so that is simply the oldest).  Commands whose body
-- expired are dropped on the way.
local marked = status == 'NotNow' and redis.call('SCARD', nn) > 0
local start, batch = 0, 1 -- the head is what is sent nearly always: one element first
while true do
  local ids = redis.call('LRANGE', q, start, start + batch - 1)
  batch = 100
  if #ids == 0 then return {'ok'} end
  for _, id in ipairs(ids) do
    if not marked or redis.call('SISMEMBER', nn, id) == 0 then
      local body = redis.call('HGET', 'mdm:cmd:' .. id, 'plist')
      if body then
        redis.call('HSET', mdm_key('sent', udid), id, now) -- the pending list's "sent" state
        return {'ok', id, body}
      end
      if redis.call('LREM', q, 1, id) > 0 then redis.call('HINCRBY', 'mdm:stats', 'queue_depth', -1) end
      start = start - 1
    end
  end
  start = start + #ids
end
