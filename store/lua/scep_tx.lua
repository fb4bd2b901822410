-- KEYS: tx (mdm:{g}:scep:tx:<id>)   ARGV: owner cert_hex ttl_s
-- The last step of a new SCEP enrollment in the cluster layout: the
-- certificate is kept in the request's transaction for a retry whose answer
-- was lost.  One recorded there already (another try of the same request
-- won the race) is returned instead: the request answers with it.
local have = redis.call('HGET', KEYS[1], 'cert')
if have then return have end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'cert', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return ''
