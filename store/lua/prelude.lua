-- Shared by every device script (prepended by the build).  A device request
-- is allowed only for a known, not checked-out device whose request came
-- with the certificate bound to its enrollment at Authenticate.
local function mdm_ident(dev, fp)
  local st = redis.call('HMGET', dev, 'state', 'cert_fp')
  if not st[1] then return 'unknown' end
  if st[1] == 'checked_out' then return 'checked_out' end
  if st[2] ~= fp then return 'cert_mismatch' end
  return nil
end
local function mdm_event(events, ...)
  redis.call('XADD', events, 'MAXLEN', '~', 100000, '*', ...)
end
