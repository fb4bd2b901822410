-- KEYS: enrollment (ddm_d: 8; 7 in the cluster layout)   ARGV: -
-- An enrollment's current status.  Returns {} when it never spoke DDM, else
-- {{enrollment hash}, {item, json...}, {identifier, json...}, {invalid id...}}.
local d = ddm_d(1)
local en = redis.call('HGETALL', d.en)
if #en == 0 then return {} end
return {en, redis.call('HGETALL', d.status), redis.call('HGETALL', d.dstatus),
        redis.call('SMEMBERS', d.invalid)}
