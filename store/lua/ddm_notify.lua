-- KEYS: job ('' for none) devices stats dev: q: notnow: channels: cmd: ddm:en: ddm:sets:
--       the configuration (ddm_g: 9)   (single layout: the cluster layout's calls are
--       store_ddm_notify.c's; the device keys are the prefix keys .. {UDID}[:UserID])
-- ARGV: mode(scan|list|enroll) cursor count now now_iso ttl_s
--                              uuid_prefix [udid...]
-- Queues the DeclarativeManagement command, its Data the enrollment's
-- TokensResponse, for each device channel and each of its user channels
-- (mdm:channels:{UDID}) whose sync token is not the one
-- it was last sent: scan walks about count entries of mdm:devices from
-- cursor (a fan-out after a change); list, or enroll for a device that
-- just enrolled, takes the UDIDs after the prefix.  A device never sent one
-- is sent one only when it has declarations.  Only enrolled devices that can speak DDM (they did, or
-- their OS can) are sent one; a command of an earlier fan-out that is still
-- queued is replaced, so a device never holds two.  The commands' UUIDs are
-- uuid_prefix (24 random characters from the caller) and a counter.
-- Returns {next_cursor ("0": done), scanned, queued, {udid, token, push_magic, topic}...}.
local job, mode, now, iso, ttl = KEYS[1], ARGV[1], ARGV[4], ARGV[5], tonumber(ARGV[6])
local devices, stats, g = KEYS[2], KEYS[3], ddm_g(11)
local function ekey(p, udid, uid)
  local k = p .. '{' .. udid .. '}'
  if uid ~= '' then k = k .. ':' .. uid end
  return k
end
local prefix = ARGV[7]
local b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = string.byte(s, i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local q = {math.floor(n / 262144) % 64, math.floor(n / 4096) % 64, math.floor(n / 64) % 64,
               n % 64}
    out[#out + 1] = b64:sub(q[1] + 1, q[1] + 1) .. b64:sub(q[2] + 1, q[2] + 1) ..
                    (b and b64:sub(q[3] + 1, q[3] + 1) or '=') .. (c and b64:sub(q[4] + 1, q[4] + 1) or '=')
  end
  return table.concat(out)
end
-- OS releases that brought DDM (Apple's schema: supportedOS of the protocol).
local function capable(dev)
  local d = redis.call('HMGET', dev, 'product_name', 'os_version')
  local major = tonumber(string.match(d[2] or '', '^(%d+)')) or 0
  local p = d[1] or ''
  if p:find('^iPhone') or p:find('^iPad') or p:find('^iPod') then return major >= 15 end
  if p:find('^Mac') then return major >= 13 end
  if p:find('^AppleTV') then return major >= 16 end
  if p:find('^Watch') then return major >= 10 end
  return p:find('^RealityDevice') ~= nil
end
local ids, cursor = {}, '0'
if mode == 'scan' then
  local scan = redis.call('ZSCAN', devices, ARGV[2], 'COUNT', tonumber(ARGV[3]))
  cursor = scan[1]
  for i = 1, #scan[2], 2 do ids[#ids + 1] = scan[2][i] end
else
  for i = 8, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local queued, push = 0, {}
-- One enrollment: the device channel (uid '') or a user channel (uid its
-- UserID), each with its own record, queue and push token (docs/REDIS.md).
local function notify(u, uid, capable_dev)
  local id = u
  if uid ~= '' then id = u .. ':' .. uid end
  local dev, en = mdm_key_in(KEYS[4], id), ekey(KEYS[9], u, uid)
  local d = redis.call('HMGET', dev, 'state', 'token', 'push_magic', 'topic', 'token_invalid')
  local e = redis.call('HMGET', en, 'notified', 'pending', 'last_seen')
  if d[1] == 'enrolled' and (e[3] or capable_dev) then
    local items, token = ddm_effective_g(g, redis.call('SMEMBERS', ekey(KEYS[10], u, uid)), uid,
                                         redis.call('HGET', ekey(KEYS[4], u, ''), 'user'))
    local time = ddm_token_d({en = en}, token, iso)
    -- One that never had declarations needs no word of an empty set.
    if e[1] ~= token and (#items > 0 or e[1]) then
      local q = mdm_key_in(KEYS[5], id)
      if e[2] and redis.call('LREM', q, 0, e[2]) > 0 then
        redis.call('HINCRBY', stats, 'queue_depth', -1)
        redis.call('SREM', mdm_key_in(KEYS[6], id), e[2])
        redis.call('DEL', KEYS[8] .. e[2])
      end
      local uuid = prefix .. string.format('%012X', queued)
      local data = base64(cjson.encode({SyncTokens = {DeclarationsToken = token,
                                                      Timestamp = time}}))
      local plist = '<?xml version="1.0" encoding="UTF-8"?>\n' ..
        '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" ' ..
        '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n<dict>\n' ..
        '\t<key>Command</key>\n\t<dict>\n\t\t<key>Data</key>\n\t\t<data>' .. data ..
        '</data>\n\t\t<key>RequestType</key>\n\t\t<string>DeclarativeManagement</string>\n' ..
        '\t</dict>\n\t<key>CommandUUID</key>\n\t<string>' .. uuid .. '</string>\n</dict>\n</plist>\n'
      local cmd = KEYS[8] .. uuid
      redis.call('HSET', cmd, 'plist', plist, 'request_type', 'DeclarativeManagement',
                 'created', now, 'targets', 1)
      redis.call('EXPIRE', cmd, ttl)
      redis.call('RPUSH', q, uuid)
      mdm_poke(u)
      redis.call('HINCRBY', stats, 'queue_depth', 1)
      redis.call('HSET', en, 'notified', token, 'pending', uuid, 'notified_at', now)
      queued = queued + 1
      if d[2] and d[3] and not d[5] then push[#push + 1] = {id, d[2], d[3], d[4] or ''} end
    end
  end
end
for _, u in ipairs(ids) do
  local base, uid = string.match(u, '^([^:]+):(.+)$')
  if base then
    notify(base, uid, capable(ekey(KEYS[4], base, '')))
  else
    local can = capable(ekey(KEYS[4], u, ''))
    notify(u, '', can)
    -- The device's user channels (mdm:channels:{UDID}) have sets of their own.
    for _, ch in ipairs(redis.call('SMEMBERS', ekey(KEYS[7], u, ''))) do
      notify(u, ch, can)
    end
  end
end
if job ~= '' then
  redis.call('HINCRBY', job, 'done', #ids)
  redis.call('HINCRBY', job, 'queued', queued)
  redis.call('HINCRBY', job, 'skipped', #ids - queued)
  redis.call('HSET', job, 'updated', now, 'cursor', cursor)
end
return {cursor, #ids, queued, push}
