-- The hot path: one call per device request on the command endpoint.
-- KEYS: dev q notnow res sent [cmd cert | cmdto] (+ the fleet block, or the outbox: fx_begin)
--   cmdto: the device's mdm:cmdto:{UDID}, cluster layout only
--   cmd, cert: the prefixes "mdm:cmd:" and "mdm:cert:" of the command bodies
--   and the certificate registry, single layout only: in the cluster layout
--   they live in other slots and mdmd reads the bodies itself.
-- ARGV: udid now cert_fp status uuid result error_chain history_len history_max_bytes
--       request_type [field value]...
--   request_type: the reported command's, from mdmd's cache of the bodies it
--   handed out, or its own HMGET (cluster layout); "" in the single layout
--   when mdmd does not know it: read here then.
--   status "-drop" (cluster layout): uuid's body is gone, drop it from the
--   queue and hand out the next one; nothing reported.
--   status "-seen": only last_seen (Idle polls answered from memory).
-- Returns {'ok'} (nothing to send), {'ok', uuid, plist, request_type} ({'ok',
-- uuid, given} in the cluster layout: mdmd adds the body) or {identity failure}.
-- udid may be a user channel, "<UDID>:<user>" (KEYS are then the channel's).
-- The device answered a push (issue 19): the time since the first push it had
-- not answered goes to the push-to-check-in histogram (mdm:pushlat, seconds
-- buckets), and its re-push schedule ends.
-- pw: push_wait as read already (false: none), or nil to read it here.
local function mdm_push_answered(dev, udid, now, pw)
  if pw == nil then pw = redis.call('HGET', dev, 'push_wait') end
  if not pw then return end
  redis.call('HDEL', dev, 'push_wait', 'repush_attempts', 'push_unanswered')
  fx_zrem('repush', udid)
  local ms = tonumber(now) - tonumber(pw)
  if ms < 0 then ms = 0 end
  for _, le in ipairs({1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}) do
    if ms <= le * 1000 then fx_hincr('pushlat', 'le_' .. le, 1) end
  end
  fx_hincr('pushlat', 'count', 1)
  fx_hincr('pushlat', 'sum_ms', ms)
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
local dev, q, nn, res, sent = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local cmd, cert = not MDM_CLUSTER and KEYS[6] or nil, not MDM_CLUSTER and KEYS[7] or nil
local cmdto = MDM_CLUSTER and KEYS[6] or nil
fx_begin(7)
local udid, now, fp, status, uuid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local bad = mdm_ident_with(dev, fp, cert)
if bad then return fx_reply({bad}) end
if status == '-seen' then
  -- Idle polls mdmd answered from memory (store_idle.c): the device was
  -- seen at now; nothing else of an Idle poll is due (what would be went
  -- through mdm:poke, and the next poll asks here).
  redis.call('HSET', dev, 'last_seen', now)
  fx_zadd('devices', now, udid)
  return fx_reply({'ok'})
end
local dropped = status == '-drop'
local pw -- push_wait, when read with the fields below
if dropped then
  if redis.call('LREM', q, 1, uuid) > 0 then fx_hincr('stats', 'queue_depth', -1) end
  redis.call('HDEL', sent, uuid)
elseif #ARGV > 10 then
  -- Only the fields whose value changed are written (a device answers
  -- DeviceInformation with the same name and serial number every time), and
  -- the search index is touched only when an indexed field is among them.
  -- os_counted and push_wait come with them: two calls fewer.
  local names = {}
  for i = 11, #ARGV - 1, 2 do names[#names + 1] = ARGV[i] end
  local nf = #names
  names[nf + 1], names[nf + 2] = 'os_counted', 'push_wait'
  local old = redis.call('HMGET', dev, unpack(names))
  pw = old[nf + 2]
  local set, reindex, oschg = {'last_seen', now, 'info_updated_at', now}, false, false
  for i = 1, nf do
    local f, v = names[i], ARGV[10 + 2 * i]
    if old[i] ~= v then
      set[#set + 1] = f
      set[#set + 1] = v
      reindex = reindex or f == 'serial_number' or f == 'device_name'
      oschg = oschg or f == 'os_version'
    end
  end
  local idx, os = reindex and mdm_index_get(dev), old[nf + 1]
  redis.call('HSET', dev, unpack(set))
  -- The search index lists devices; a user channel's answers stay on its record.
  -- The OS count (mdm:os) is kept up when the version changed, or was never
  -- counted (a device enrolled before the count existed).
  if not string.find(udid, ':', 1, true) then
    if reindex then fx_index_sync(dev, udid, idx) end
    if oschg or not os then fx_os_sync(dev, os) end
  end
else
  redis.call('HSET', dev, 'last_seen', now)
end
if not dropped then
  -- mdm:devices lists devices; a user channel's last_seen is on its record.
  if not string.find(udid, ':', 1, true) then fx_zadd('devices', now, udid) end
  mdm_push_answered(dev, udid, now, pw)
end

if dropped then
  -- Nothing reported: the marks of the last report stand.
elseif status == 'NotNow' then
  if uuid ~= '' and redis.call('LPOS', q, uuid) then
    redis.call('SADD', nn, uuid)
    fx_rate('cmd', 'NotNow')
  end
else
  if status ~= 'Idle' then
    -- Acknowledged, Error, CommandFormatError: finished, never sent again.
    local queued = redis.call('LREM', q, 1, uuid)
    -- Never HINCRBY by -0: Redis refuses "-0", and a script that fails half
    -- way keeps what it already did (the LREM above), losing the result.
    if queued > 0 then fx_hincr('stats', 'queue_depth', -queued) end
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
    redis.call('HDEL', sent, uuid)
    if not again then
      local rt = ARGV[10]
      if cmd and rt == '' then rt = redis.call('HGET', cmd .. uuid, 'request_type') or '' end
      mdm_history_add(dev, res, tonumber(ARGV[8]), tonumber(ARGV[9]), uuid, rt, status, now,
                      queued, ARGV[6], ARGV[7])
      fx_event('type', 'command_finished', 'udid', udid, 'uuid', uuid,
               'request_type', rt, 'status', status, 'time', now)
      fx_rate('cmd', status)
      if rt == 'DeviceConfigured' and status == 'Acknowledged' then
        -- Setup Assistant goes on: the device is no longer awaiting configuration.
        redis.call('HSET', dev, 'awaiting_configuration', 'false', 'configured_at', now)
        fx_event('type', 'device_configured', 'udid', udid, 'time', now)
      end
    end
  end
  redis.call('DEL', nn)
end

-- The oldest queued command not marked NotNow (after a non-NotNow report the
-- marks are gone, so that is simply the oldest).  Commands whose body
-- expired are dropped on the way (cluster layout: by mdmd, "-drop").
local marked = (status == 'NotNow' or dropped) and redis.call('SCARD', nn) > 0
local start, batch = 0, 1 -- the head is what is sent nearly always: one element first
while true do
  local ids = redis.call('LRANGE', q, start, start + batch - 1)
  batch = 100
  if #ids == 0 then return fx_reply({'ok'}) end
  for _, id in ipairs(ids) do
    if not marked or redis.call('SISMEMBER', nn, id) == 0 then
      if not cmd then
        redis.call('HSET', sent, id, now)
        -- With when the device was given it (mdm:cmdto): mdmd tells a body
        -- that expired from one a node did not return (store_report.c).
        return fx_reply({'ok', id, tostring(redis.call('ZSCORE', cmdto, id) or '')})
      end
      local b = redis.call('HMGET', cmd .. id, 'plist', 'request_type')
      local body = b[1]
      if body then
        redis.call('HSET', sent, id, now) -- the pending list's "sent" state
        return fx_reply({'ok', id, body, b[2] or ''})
      end
      if redis.call('LREM', q, 1, id) > 0 then fx_hincr('stats', 'queue_depth', -1) end
      start = start - 1
    end
  end
  start = start + #ids
end
