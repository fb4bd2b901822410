-- KEYS: udids (mdm:jobudids:<job id>)   ARGV: op ttl_s [udid...]
-- With workers: a list job's UDIDs, so that another worker can resume it
-- (job_live.lua).  'put' appends them (and sets the TTL), 'get' answers them
-- as a JSON array, 'del' at the job's end.
local op = ARGV[1]
if op == 'get' then return cjson.encode(redis.call('LRANGE', KEYS[1], 0, -1)) end
if op == 'del' then return redis.call('DEL', KEYS[1]) end
for i = 3, #ARGV, 4096 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 4095, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return #ARGV - 2
