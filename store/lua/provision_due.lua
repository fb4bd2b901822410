-- KEYS: provision   ARGV: now before limit
-- Claims up to `limit` devices whose provisioning has been pending since
-- before `before` (ms): each is rescored to now, so that the next look (this
-- mdmd's or another's) leaves it alone while this attempt runs.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, u in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[1], u) end
return ids
