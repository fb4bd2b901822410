-- Shared by every device script (prepended by the build).  A device request
-- is allowed only for a known, not checked-out device whose request came
-- with the certificate bound to its enrollment at Authenticate, and that
-- certificate has not been revoked since (re-enrollment, CheckOut).
local function mdm_ident(dev, fp)
  local st = redis.call('HMGET', dev, 'state', 'cert_fp')
  if not st[1] then return 'unknown' end
  if st[1] == 'checked_out' then return 'checked_out' end
  if st[2] ~= fp then return 'cert_mismatch' end
  if redis.call('HGET', 'mdm:cert:' .. fp, 'state') == 'revoked' then return 'revoked' end
  return nil
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
-- Revokes a certificate of the issued-certificate registry (mdm:cert:<fp>);
-- certificates enrollment did not issue have no entry and are left alone.
local function mdm_revoke(events, fp, udid, now, reason)
  local k = 'mdm:cert:' .. fp
  if redis.call('HGET', k, 'state') ~= 'issued' then return false end
  redis.call('HSET', k, 'state', 'revoked', 'revoked_at', now, 'revoked_reason', reason)
  mdm_event(events, 'type', 'cert_revoked', 'udid', udid, 'fp', fp, 'reason', reason,
            'time', now)
  return true
end
-- The device search index mdm:idx (docs/REDIS.md, "Device search"): one
-- member "lowercased value \0 udid \0 field" per searchable field, all scored
-- 0, read by prefix with ZRANGEBYLEX.  A script that may change these fields
-- reads them with mdm_index_get before and calls mdm_index_sync after; the
-- ZADDs are idempotent, so a device recorded by an older version is indexed
-- at its next Authenticate or DeviceInformation answer.
local mdm_index_names = {'udid', 'serial_number', 'device_name', 'user'}
local function mdm_index_get(dev)
  return redis.call('HMGET', dev, unpack(mdm_index_names))
end
local function mdm_index_sync(dev, udid, old)
  local new = mdm_index_get(dev)
  for i, f in ipairs(mdm_index_names) do
    if old[i] and old[i] ~= new[i] then
      redis.call('ZREM', 'mdm:idx', string.lower(old[i]) .. '\0' .. udid .. '\0' .. f)
    end
    if new[i] and new[i] ~= '' then
      redis.call('ZADD', 'mdm:idx', 0, string.lower(new[i]) .. '\0' .. udid .. '\0' .. f)
    end
  end
end
