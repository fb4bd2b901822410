-- KEYS: cert (mdm:cert:<fp>) (+ the fleet block: fx_begin)
-- ARGV: udid fp now cert_serial user bind renewed_from old_fp rebound
-- A SCEP certificate's registry entry in the cluster layout (store_scep.c),
-- a slot of its own: issued to udid ('' with bind=authenticate: bound at
-- the device's first Authenticate).  renewed_from '' (a new enrollment):
-- the cert_issued event; else (a renewal of old_fp, made by scep_renew's
-- steps) the entry names it, and with udid '' (no device record to move)
-- the cert_renewed event is written here.
local k = KEYS[1]
fx_begin(1)
local udid, fp, now, serial, user = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
redis.call('HSET', k, 'udid', udid, 'user', user, 'kind', 'device', 'state', 'issued',
           'issued', now, 'cert_serial', serial, 'source', 'scep')
if ARGV[6] == '1' then redis.call('HSET', k, 'bind', 'authenticate') end
if ARGV[7] == '' then
  fx_event('type', 'cert_issued', 'udid', udid, 'fp', fp, 'source', 'scep', 'user', user,
           'time', now)
else
  redis.call('HSET', k, 'renewed_from', ARGV[7])
  if udid == '' then
    fx_event('type', 'cert_renewed', 'udid', udid, 'fp', fp, 'old_fp', ARGV[7], 'rebound', '0',
             'time', now)
  end
end
return fx_reply(1)
