-- KEYS: dev asset: cert:   (prefixes: + name is the asset's hash, + a
--       fingerprint a registry entry; single layout only: the cluster layout
--       runs this script with dev alone, for the identity check, and reads
--       the asset on its own)
-- ARGV: udid cert_fp name
-- A device fetching asset data: the identity check of every device request
-- (the certificate bound to an enrolled device), then the bytes.
-- Returns {'ok', content_type, body}, {'ok'} (no such asset) or {identity failure}.
local bad = mdm_ident_dev(KEYS[1], ARGV[2], KEYS[3])
if bad then return {bad} end
if MDM_CLUSTER then return {'ok'} end
local d = redis.call('HMGET', KEYS[2] .. ARGV[3], 'content_type', 'body')
if not d[2] then return {'ok'} end
return {'ok', d[1], d[2]}
