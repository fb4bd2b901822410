-- KEYS: new_cert tx cert (the registry's prefix key) (+ the fleet block: fx_begin)
-- ARGV: udid user serial now fp
-- End of OTA phase 1: registers the OTA identity just issued (kind ota,
-- state issued).  tx (mdm:enroll:tx:<id>, made by challenge_take.lua) names
-- the identity an earlier try of the same request registered: its answer was
-- lost (the device got 503 or nothing), so the device never had it, and it
-- is revoked here (reason 'retried') in the same step that registers the new
-- one: one live identity per enrollment, never two.  If that earlier one was
-- used for phase 2 meanwhile, this is no retry of a lost answer: refused.
-- Returns {'ok', revoked fingerprint or ''} or {'used'}.
-- Single layout only: the cluster layout makes the same steps as calls in
-- turn, each on its own slot (store_enroll.c, docs/REDIS.md "Redis Cluster").
local new, tx, cert = KEYS[1], KEYS[2], KEYS[3]
fx_begin(3)
local udid, user, serial, now, fp = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local prev = redis.call('HGET', tx, 'cert')
local revoked = ''
if prev and prev ~= '' and prev ~= fp then
  local st = redis.call('HGET', cert .. prev, 'state')
  if st and st ~= 'issued' then return fx_reply({'used'}) end
  if fx_revoke(cert, prev, udid, now, 'retried') then revoked = prev end
end
redis.call('HSET', new, 'udid', udid, 'user', user, 'kind', 'ota', 'state', 'issued',
           'serial', serial, 'issued', now)
if redis.call('EXISTS', tx) == 1 then redis.call('HSET', tx, 'cert', fp) end
return fx_reply({'ok', revoked})
