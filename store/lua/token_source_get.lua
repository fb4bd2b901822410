-- KEYS: dev [source cert]
--   source, cert: the token source (mdm:tokensrc:<type>) and the registry's
--   prefix key, single layout only: in the cluster layout they live in other
--   slots, and mdmd passes the source as it read it just before.
-- ARGV: cert_fp now [exists (1|0), kind, data, issuer: each "1<value>" or "0"
--   for none; cluster layout]
-- GetToken: the token source an admin configured for the TokenServiceType
-- (mdm:tokensrc:<type>).  Returns {'ok', kind, data, issuer} (false: none),
-- or {identity failure}.
local dev = KEYS[1]
local src, cert = not MDM_CLUSTER and KEYS[2] or nil, not MDM_CLUSTER and KEYS[3] or nil
local bad = mdm_ident_with(dev, ARGV[1], cert)
if bad then return {bad} end
local v = {false, false, false}
if src then
  v = redis.call('HMGET', src, 'kind', 'data', 'issuer')
else
  for i = 1, 3 do
    local x = ARGV[3 + i]
    v[i] = string.sub(x, 1, 1) == '1' and string.sub(x, 2) or false
  end
end
return {'ok', v[1], v[2], v[3]}
