-- KEYS: enrollment (ddm_d: 8; 7 in the cluster layout)   ARGV: udid user_id cert_fp now history_len full report errors nitems
--               [item json]*nitems [identifier valid json]...
-- The status endpoint: appends the report to the enrollment's stream
-- (bounded by history_len) and folds it into its current status, one hash
-- field per status item (JSON) and, for management.declarations, one field
-- per declaration; a full report (FullReport) replaces what was there.  The
-- status items whose value changed go to mdm:events in one event (the
-- enrollment sets and the event are fleet writes: fx_*).
-- Returns {'ok', changed items, declarations not valid} or {identity failure}.
local udid, uid, now = ARGV[1], ARGV[2], ARGV[4]
local d = ddm_d(1)
fx_begin(8) -- (the cluster layout has no fleet block)
local bad = ddm_begin_d(d, udid, uid, ARGV[3], now)
if bad then return fx_reply({bad}) end
local eid = udid
if uid ~= '' then eid = udid .. ':' .. uid end
local st, ds, inv = d.status, d.dstatus, d.invalid
local full, nitems = ARGV[6] == '1', tonumber(ARGV[9])
redis.call('XADD', d.reports, 'MAXLEN', '~', tonumber(ARGV[5]), '*',
           'time', now, 'full', ARGV[6], 'report', ARGV[7])
local changed = {}
local old = {}
if full then
  for _, f in ipairs(redis.call('HKEYS', st)) do old[f] = true end
end
for i = 0, nitems - 1 do
  local item, json = ARGV[10 + 2 * i], ARGV[11 + 2 * i]
  old[item] = nil
  if redis.call('HGET', st, item) ~= json then
    redis.call('HSET', st, item, json)
    changed[#changed + 1] = item
  end
end
for item in pairs(old) do
  redis.call('HDEL', st, item)
  changed[#changed + 1] = item
end
local decl_changed = false
local first = 10 + 2 * nitems
if full and redis.call('EXISTS', ds) == 1 then
  local keep = {}
  for i = first, #ARGV, 3 do keep[ARGV[i]] = true end
  for _, id in ipairs(redis.call('HKEYS', ds)) do
    if not keep[id] then
      redis.call('HDEL', ds, id)
      redis.call('SREM', inv, id)
      decl_changed = true
    end
  end
end
for i = first, #ARGV, 3 do
  local id, valid, json = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HGET', ds, id) ~= json then
    redis.call('HSET', ds, id, json)
    decl_changed = true
  end
  if valid == 'invalid' then redis.call('SADD', inv, id) else redis.call('SREM', inv, id) end
end
if decl_changed then changed[#changed + 1] = 'management.declarations' end
local ninvalid = redis.call('SCARD', inv)
if ninvalid > 0 then
  fx_sadd('ddm_failed', eid)
else
  fx_srem('ddm_failed', eid)
end
redis.call('HSET', d.en, 'last_status', now, 'status_errors', ARGV[8],
           'invalid', ninvalid)
if #changed > 0 then
  table.sort(changed)
  fx_event('type', 'ddm_status', 'udid', udid, 'enrollment', eid, 'items',
            table.concat(changed, ','), 'invalid', ninvalid, 'time', now)
end
return fx_reply({'ok', table.concat(changed, ','), ninvalid})
