-- KEYS: the configuration (ddm_g: 9)   ARGV: name
-- Returns {} when unknown, else {content_type, sha256, size, created, updated}.
local g = ddm_g(1)
local d = redis.call('HMGET', g.asset .. ARGV[1], 'content_type', 'sha256', 'size',
                     'created', 'updated')
if not d[1] then return {} end
return d
