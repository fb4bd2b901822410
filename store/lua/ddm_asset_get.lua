-- KEYS: -   ARGV: name
-- Returns {} when unknown, else {content_type, sha256, size, created, updated}.
local d = redis.call('HMGET', 'mdm:ddm:asset:' .. ARGV[1], 'content_type', 'sha256', 'size',
                     'created', 'updated')
if not d[1] then return {} end
return d
