-- KEYS: item assign   ARGV: -
-- Returns {} for an unknown id, else {fields (body included), users}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local users = redis.call('SMEMBERS', KEYS[2])
table.sort(users)
return {redis.call('HGETALL', KEYS[1]), users}
