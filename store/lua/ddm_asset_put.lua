-- KEYS: the configuration (ddm_g: 9)   ARGV: name content_type sha256 size now body
-- Stores data an asset declaration points at (served to devices at
-- <mdm_url>/v1/assets/<name>).  Returns 1 created, 0 replaced.
local g = ddm_g(1)
local k = g.asset .. ARGV[1]
local created = redis.call('EXISTS', k) == 0
redis.call('HSET', k, 'content_type', ARGV[2], 'sha256', ARGV[3], 'size', ARGV[4],
           'updated', ARGV[5], 'body', ARGV[6])
if created then redis.call('HSET', k, 'created', ARGV[5]) end
redis.call('SADD', g.assets, ARGV[1])
return created and 1 or 0
