-- KEYS: -   ARGV: udid user_id
-- An enrollment's current status.  Returns {} when it never spoke DDM, else
-- {{enrollment hash}, {item, json...}, {identifier, json...}, {invalid id...}}.
local udid, uid = ARGV[1], ARGV[2]
local en = redis.call('HGETALL', ddm_key('en', udid, uid))
if #en == 0 then return {} end
return {en, redis.call('HGETALL', ddm_key('status', udid, uid)),
        redis.call('HGETALL', ddm_key('dstatus', udid, uid)),
        redis.call('SMEMBERS', ddm_key('invalid', udid, uid))}
