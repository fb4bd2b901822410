-- Shared by every script (prepended by the build): the identity check of a
-- device request, the fleet writes (fx) and the helpers the scripts share.
-- Tells every mdmd that what an Idle poll of the device would get may have
-- changed (a command queued, a push sent, the certificate or the enrollment
-- changed): store_idle.c's answers from memory for it end.  udid may be a
-- user channel's "<UDID>:<user>"; the device's own entry ends with it.
local function mdm_poke(udid)
  redis.call('PUBLISH', 'mdm:poke', (string.match(udid, '^([^:]*)')))
end
-- Fleet effects (docs/REDIS.md, "Redis Cluster"): what a device script
-- writes to the fleet-wide keys (indexes, counters, the event stream).
-- Single layout: applied at once in this script, atomic with the rest, on the
-- fleet block mdmd appended to KEYS after the script's own n keys
-- (fx_begin(n)).  Cluster layout: those keys live in the device's bucket, a
-- slot of their own.  The writes go into the device's outbox (the last key
-- mdmd gave: mdm:fx:{<hash tag>}, field <seq> -> JSON, in the device's slot,
-- so atomic with the device's own writes) and every entry not yet
-- acknowledged is returned with the reply (fx_reply); mdmd applies them with
-- fleet_apply.lua on the bucket, which skips what it applied before, then
-- acknowledges (fx_ack.lua).  A reply lost, or mdmd gone between the calls:
-- the entries are applied with the device's next request.  The order of the
-- block is store_argv.c's (store_fx_keys).
local fx_names = {'devices', 'idx', 'stats', 'os', 'pushlat', 'repush', 'provision', 'events',
                  'rate_cmd', 'rate_push', 'ddm_enrollments', 'ddm_failed'}
local fx_keys, fx_log, fx_box = {}, {}, nil
local function fx_bind(first)
  for i, name in ipairs(fx_names) do fx_keys[name] = KEYS[first + i - 1] end
end
-- One write {kind, name, args...} on the bound keys.  A bucket's stream is
-- capped at its share of the fleet's cap.
local function fx_do(w)
  local kind, name, k = w[1], w[2], fx_keys[w[2]]
  if kind == 'zadd' then
    redis.call('ZADD', k, w[3], w[4])
  elseif kind == 'zaddnx' then
    redis.call('ZADD', k, 'NX', w[3], w[4])
  elseif kind == 'zrem' then
    redis.call('ZREM', k, w[3])
  elseif kind == 'sadd' then
    redis.call('SADD', k, w[3])
  elseif kind == 'srem' then
    redis.call('SREM', k, w[3])
  elseif kind == 'hincr' then
    -- mdm:os counts devices: a version nobody reports any more goes.
    if redis.call('HINCRBY', k, w[3], w[4]) <= 0 and name == 'os' then redis.call('HDEL', k, w[3]) end
  elseif kind == 'event' then
    redis.call('XADD', k, 'MAXLEN', '~', MDM_CLUSTER and 1563 or 100000, '*', unpack(w, 3))
  elseif kind == 'rate' then
    -- A minute's key is counted in that minute only: its TTL is set with
    -- each outcome's first count, not with every count (a call per report).
    if redis.call('HINCRBY', k, w[3], 1) == 1 then redis.call('EXPIRE', k, 7200) end
  end
end
local function fx_push(...)
  local w = {...}
  for i = 3, #w do w[i] = tostring(w[i]) end
  if not MDM_CLUSTER then return fx_do(w) end
  fx_log[#fx_log + 1] = #w
  for _, v in ipairs(w) do fx_log[#fx_log + 1] = v end
end
local function fx_begin(n)
  fx_log = {}
  if MDM_CLUSTER then fx_box = KEYS[#KEYS] else fx_bind(n + 1) end
end
local function fx_zadd(name, score, member) fx_push('zadd', name, score, member) end
local function fx_zadd_nx(name, score, member) fx_push('zaddnx', name, score, member) end
local function fx_zrem(name, member) fx_push('zrem', name, member) end
local function fx_sadd(name, member) fx_push('sadd', name, member) end
local function fx_srem(name, member) fx_push('srem', name, member) end
-- Never HINCRBY by 0: a script that fails half way keeps what it did.
local function fx_hincr(name, field, n)
  if tonumber(n) ~= 0 then fx_push('hincr', name, field, n) end
end
local function fx_event(...) fx_push('event', 'events', ...) end
-- mdm:rate:<what>:<minute> (what: cmd or push; the minute is mdmd's, in the
-- key it passed): outcome -> count, kept 2 hours.
local function fx_rate(what, outcome) fx_push('rate', 'rate_' .. what, outcome) end
-- The script's answer: as it is (single layout), or with the outbox's
-- entries to apply, {seq, JSON}... (cluster layout; the status marker tells
-- store_argv.c a script that returned through here from one that did not).
local function fx_reply(reply)
  if not MDM_CLUSTER then return reply end
  if reply == nil then reply = false end
  local box = {}
  if fx_box then
    if #fx_log > 0 then
      local seq = redis.call('HINCRBY', fx_box, 'seq', 1)
      redis.call('HSET', fx_box, seq, cjson.encode(fx_log))
    end
    if #fx_log > 0 or redis.call('HLEN', fx_box) > 1 then
      local all = redis.call('HGETALL', fx_box)
      for i = 1, #all - 1, 2 do
        if all[i] ~= 'seq' then
          box[#box + 1] = all[i]
          box[#box + 1] = all[i + 1]
        end
      end
    end
  end
  return {{ok = 'mdm_fx'}, reply, box}
end
-- A user channel ("<UDID>:<user>", docs/REDIS.md) has its device's keys with
-- ":<user>" after the hash tag (the device's slot), and acts with its
-- device's identity while the channel lasts: 'no_channel' when the device
-- is fine but the channel never began or was ended.
local function mdm_key(kind, id)
  local udid, user = string.match(id, '^([^:]+):(.+)$')
  if udid then return 'mdm:' .. kind .. ':{' .. udid .. '}:' .. user end
  return 'mdm:' .. kind .. ':{' .. id .. '}'
end
-- 1 when a new identity for user must not take over dev: it is enrolled (not
-- checked out) and owned by another user.  A challenge is no claim on it.
local function mdm_owned_by_other(dev, user)
  local d = redis.call('HMGET', dev, 'state', 'user')
  return d[1] and d[1] ~= 'checked_out' and d[2] and d[2] ~= '' and d[2] ~= user
end
local function mdm_event(events, ...)
  redis.call('XADD', events, 'MAXLEN', '~', 100000, '*', ...)
end
-- The device search index mdm:idx (docs/REDIS.md, "Device search"): one
-- member "lowercased value \0 udid \0 field" per searchable field, all scored
-- 0, read by prefix with ZRANGEBYLEX.  A script that may change these fields
-- reads them with mdm_index_get before and calls fx_index_sync after; the
-- ZADDs are idempotent, so a device recorded by an older version is indexed
-- at its next Authenticate or DeviceInformation answer.
local mdm_index_names = {'udid', 'serial_number', 'device_name', 'user'}
local function mdm_index_get(dev)
  return redis.call('HMGET', dev, unpack(mdm_index_names))
end
-- The dashboard's aggregates (docs/REDIS.md, "Dashboard aggregates"), kept
-- where the data changes so that a chart never scans the fleet or history.
-- mdm:os: per os_version, the devices (not user channels) not checked out
-- that report it; a script that may change a device's os_version or state
-- reads mdm_os_get before and calls fx_os_sync after.  A device recorded by
-- an older version is counted from its next Authenticate or DeviceInformation.
-- os_counted on the record: the version it is counted under now.
local function mdm_os_get(dev)
  return redis.call('HGET', dev, 'os_counted')
end
-- The identity check of a device request: a known, not checked-out device
-- whose request came with the certificate bound to its enrollment at
-- Authenticate, not revoked since (re-enrollment, CheckOut).  cert: the
-- registry's prefix key ("mdm:cert:"), single layout.  In the cluster layout
-- the registry lives in other slots (cert nil): the device record carries
-- what the check needs, cert_revoked (the fingerprint of a certificate of
-- this device revoked since: its next request is refused when it is the bound
-- one), written with the registry entry's revocation; a migrated record binds
-- its first certificate without the registry's owner check.
local function mdm_ident_dev(dev, fp, cert)
  local st = redis.call('HMGET', dev, 'state', 'cert_fp', 'migrated', 'cert_revoked')
  if not st[1] then return 'unknown' end
  if st[1] == 'checked_out' then return 'checked_out' end
  if not st[2] and st[3] == '1' and fp ~= '' then
    if cert then
      local udid = string.match(dev, '^mdm:dev:{(.*)}$')
      local owner = redis.call('HGET', cert .. fp, 'udid')
      if owner and owner ~= '' and owner ~= udid then return 'cert_mismatch' end
    end
    redis.call('HSET', dev, 'cert_fp', fp, 'migrated_bound_at', redis.call('TIME')[1] * 1000)
    st[2] = fp
  end
  if st[2] ~= fp then return 'cert_mismatch' end
  if cert then
    if redis.call('HGET', cert .. fp, 'state') == 'revoked' then return 'revoked' end
  elseif st[4] == fp then
    return 'revoked'
  end
  return nil
end
-- A user channel's record is its device's with ":<user>" after the hash tag:
-- the parent's name is derived from dev, in the same slot.
local function mdm_ident_with(dev, fp, cert)
  local parent = string.match(dev, '^([^}]*}):.+$')
  if not parent then return mdm_ident_dev(dev, fp, cert) end
  local bad = mdm_ident_dev(parent, fp, cert)
  if bad then return bad end
  local st = redis.call('HGET', dev, 'state')
  if not st or st == 'checked_out' then return 'no_channel' end
  return nil
end
-- The device search index in the fleet block (fx): the rules above.
local function fx_index_sync(dev, udid, old)
  local new = mdm_index_get(dev)
  for i, f in ipairs(mdm_index_names) do
    if old[i] and old[i] ~= new[i] then
      fx_zrem('idx', string.lower(old[i]) .. '\0' .. udid .. '\0' .. f)
    end
    if new[i] and new[i] ~= '' then
      fx_zadd('idx', 0, string.lower(new[i]) .. '\0' .. udid .. '\0' .. f)
    end
  end
end
-- mdm:os in the fleet block (fx): the rules above.
local function fx_os_sync(dev, old)
  local new = redis.call('HMGET', dev, 'os_version', 'state')
  local a = old or nil
  local b = new[1] and new[1] ~= '' and new[2] ~= 'checked_out' and new[1] or nil
  if a == b then return end
  if a then fx_hincr('os', a, -1) end
  if b then
    fx_hincr('os', b, 1)
    redis.call('HSET', dev, 'os_counted', b)
  else
    redis.call('HDEL', dev, 'os_counted')
  end
end
-- Ends every user channel of a device (CheckOut, a new Authenticate): their
-- queues go, their records say checked_out; history stays.  set is the device's
-- channel set, and a channel's record, queue and marks are the device's keys
-- dev, q, nn with ":<user>" after them (the same slot).
local function fx_end_channels(set, dev, q, nn, udid, now)
  for _, user in ipairs(redis.call('SMEMBERS', set)) do
    local cq = q .. ':' .. user
    local n = redis.call('LLEN', cq)
    redis.call('DEL', cq, nn .. ':' .. user)
    fx_hincr('stats', 'queue_depth', -n)
    redis.call('HSET', dev .. ':' .. user, 'state', 'checked_out', 'checked_out_at', now)
    redis.call('HDEL', dev .. ':' .. user, 'token', 'push_magic')
    fx_event('type', 'user_channel_ended', 'udid', udid, 'user', user, 'time', now, 'dropped', n)
  end
  redis.call('DEL', set)
end
-- Revokes a certificate of the issued-certificate registry (one that
-- enrollment did not issue has no entry and is left alone), given the
-- registry's prefix key cert (single
-- layout; the cluster layout revokes with cert_revoke.lua on the entry).
local function fx_revoke(cert, fp, udid, now, reason)
  local k = cert .. fp
  if redis.call('HGET', k, 'state') ~= 'issued' then return false end
  redis.call('HSET', k, 'state', 'revoked', 'revoked_at', now, 'revoked_reason', reason)
  mdm_poke(udid)
  fx_event('type', 'cert_revoked', 'udid', udid, 'fp', fp, 'reason', reason, 'time', now)
  return true
end
-- Declarative management by keys given in KEYS (docs/REDIS.md, "Redis
-- Cluster").  ddm_g(i): the fleet's DDM configuration, KEYS[i..i+8] as
-- store_ddm.c passes them (one slot, {g}, in the cluster layout; a name
-- ending in ':' is a prefix: + a name gives a key of the same slot).
local function ddm_g(i)
  return {decls = KEYS[i], decl = KEYS[i + 1], sets = KEYS[i + 2], set = KEYS[i + 3],
          everyone = KEYS[i + 4], user = KEYS[i + 5], assets = KEYS[i + 6],
          asset = KEYS[i + 7], users = KEYS[i + 8]}
end
-- ddm_d(i): one enrollment's keys, KEYS[i..i+6]: the device's record, then
-- its mdm:ddm:<what>:{UDID}[:UserID] keys (all in the device's slot); in the
-- single layout KEYS[i+7] is the registry's prefix key (mdm_ident_dev), so
-- the block is 8 keys there and 7 in the cluster layout.
local function ddm_d(i)
  local cert = nil
  if not MDM_CLUSTER then cert = KEYS[i + 7] end
  return {dev = KEYS[i], en = KEYS[i + 1], sets = KEYS[i + 2], status = KEYS[i + 3],
          dstatus = KEYS[i + 4], invalid = KEYS[i + 5], reports = KEYS[i + 6], cert = cert}
end
-- The set names an enrollment gets (its own; the device channel also
-- everyone's and its user's), then its effective declarations, sorted by
-- identifier, {{identifier, type, kind, server token}...}, and the sync
-- token: a hash of the identifiers and server tokens, so it changes exactly
-- when the set does.  Only {g} keys: the cluster layout runs it on its own.
local function ddm_effective_g(g, own, uid, user)
  local names = {}
  for _, n in ipairs(own) do names[#names + 1] = n end
  if uid == '' then
    for _, n in ipairs(redis.call('SMEMBERS', g.everyone)) do names[#names + 1] = n end
    if user and user ~= '' then
      for _, n in ipairs(redis.call('SMEMBERS', g.user .. user)) do names[#names + 1] = n end
    end
  end
  local seen, ids = {}, {}
  for _, n in ipairs(names) do
    for _, id in ipairs(redis.call('SMEMBERS', g.set .. n .. ':decls')) do
      if not seen[id] then
        seen[id] = true
        ids[#ids + 1] = id
      end
    end
  end
  table.sort(ids)
  local out, acc = {}, {}
  for _, id in ipairs(ids) do
    local d = redis.call('HMGET', g.decl .. id, 'type', 'kind', 'token')
    if d[1] then
      out[#out + 1] = {id, d[1], d[2], d[3]}
      acc[#acc + 1] = id .. '\0' .. d[3]
    end
  end
  return out, redis.sha1hex(table.concat(acc, '\n'))
end
-- The device side of ddm_effective_g: the enrollment's own sets and its
-- device's user.
local function ddm_own_d(d)
  return redis.call('SMEMBERS', d.sets), redis.call('HGET', d.dev, 'user')
end
-- Records token as the enrollment's sync token; returns when it last changed
-- (the Timestamp of Apple's SynchronizationTokens).
local function ddm_token_d(d, token, now_iso)
  local old = redis.call('HMGET', d.en, 'token', 'token_time')
  if old[1] ~= token or not old[2] then
    redis.call('HSET', d.en, 'token', token, 'token_time', now_iso)
    old[2] = now_iso
  end
  return old[2]
end
-- A device request on the DDM endpoints: the identity check of every device
-- request, then the enrollment is remembered (mdm:ddm:enrollments, a fleet
-- write: fx_begin first).
local function ddm_begin_d(d, udid, uid, fp, now)
  local bad = mdm_ident_dev(d.dev, fp, d.cert)
  if bad then return bad end
  local eid = udid
  if uid ~= '' then eid = udid .. ':' .. uid end
  fx_zadd('ddm_enrollments', now, eid)
  redis.call('HSET', d.en, 'udid', udid, 'user_id', uid, 'last_seen', now)
  redis.call('HSET', d.dev, 'last_seen', now)
  return nil
end
-- The opening of a DDM endpoint script (ddm_tokens, ddm_items, ddm_fetch)
-- whose KEYS are the enrollment's (ddm_d, 8 keys) then the configuration's
-- (ddm_g): fx_begin, ddm_begin_d, the enrollment's own sets.  Returns the
-- reply to give at once (an identity failure; in the cluster layout, the
-- first of the split calls (store_ddm.c): what ddm_effective.lua needs of the
-- device, {'ok', user, {set...}}), or nil and d, g, own, user.
local function ddm_open(udid, uid, fp, now)
  local d, g = ddm_d(1), ddm_g(9)
  fx_begin(17)
  local bad = ddm_begin_d(d, udid, uid, fp, now)
  if bad then return fx_reply({bad}) end
  local own, user = ddm_own_d(d)
  if MDM_CLUSTER then return fx_reply({'ok', user or '', own}) end
  return nil, d, g, own, user
end
-- The key of id (a UDID, or "<UDID>:<user>" for a user channel) under a
-- prefix key given in KEYS (e.g. mdm:dev:): prefix{UDID}[:user], the device's
-- slot, as mdm_key() builds it from a literal.
local function mdm_key_in(prefix, id)
  local udid, user = string.match(id, '^([^:]+):(.+)$')
  if udid then return prefix .. '{' .. udid .. '}:' .. user end
  return prefix .. '{' .. id .. '}'
end
