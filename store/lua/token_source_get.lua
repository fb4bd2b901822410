-- KEYS: dev source   ARGV: cert_fp now
-- GetToken: the token source an admin configured for the TokenServiceType
-- (mdm:tokensrc:<type>).  Returns {'ok', kind, data, issuer} (false: none),
-- or {identity failure}.
local dev, src = KEYS[1], KEYS[2]
local bad = mdm_ident(dev, ARGV[1])
if bad then return {bad} end
local v = redis.call('HMGET', src, 'kind', 'data', 'issuer')
return {'ok', v[1], v[2], v[3]}
