-- KEYS: -   ARGV: udid cert_fp name
-- A device fetching asset data: the identity check of every device request
-- (the certificate bound to an enrolled device), then the bytes.
-- Returns {'ok', content_type, body}, {'ok'} (no such asset) or {identity failure}.
local bad = mdm_ident('mdm:dev:{' .. ARGV[1] .. '}', ARGV[2])
if bad then return {bad} end
local d = redis.call('HMGET', 'mdm:ddm:asset:' .. ARGV[3], 'content_type', 'body')
if not d[2] then return {'ok'} end
return {'ok', d[1], d[2]}
