-- KEYS: live (mdm:jobs:live)   ARGV: op now lease_ms [job id...]
-- With workers (core/super.h): the bulk jobs being run, scored by when their
-- lease runs out.  The worker running a job puts it here ('start') and
-- renews it ('renew', only while it is here) until the job's end ('drop').
-- A job whose lease ran out (its worker died) goes to the first worker that
-- looks ('adopt': rescored in the same step, so that one worker has it);
-- that worker resumes it from the record's position.  Returns the id
-- adopted ('' for none), or the number of ids for the other ops.
local op, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if op == 'adopt' then
  local id = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)[1]
  if not id then return '' end
  redis.call('ZADD', KEYS[1], now + lease, id)
  return id
end
for i = 4, #ARGV do
  if op == 'start' then redis.call('ZADD', KEYS[1], now + lease, ARGV[i])
  elseif op == 'renew' then redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i])
  else redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return #ARGV - 3
