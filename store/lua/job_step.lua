-- KEYS: job (mdm:{g}:job:<id>)   ARGV: kind at now n queued unknown skipped cursor
-- Cluster layout (store_queue.c): a bulk job's progress after one step, a call of its own
-- (the step's devices are in other slots).  kind 'list': at is the step's first index
-- (`next`), n the UDIDs it covered; 'filter': at is the steps done before it, cursor the
-- position after it.  A step the record has passed already (this call ran, its reply was
-- lost, and the step was run again: queueing it again was a no-op, once per device) is
-- not counted twice: {1, position stored}.  Else {0, position now}.
-- kind 'cancel' (cancel_step.lua's record): n scanned, queued the commands taken off, cursor
-- the position after; the job is done at cursor '0'.
local job, kind, at, now = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]
if kind == 'cancel' then
  redis.call('HINCRBY', job, 'done', tonumber(ARGV[4]))
  redis.call('HINCRBY', job, 'canceled', tonumber(ARGV[5]))
  redis.call('HSET', job, 'cursor', ARGV[8], 'updated', now)
  if ARGV[8] == '0' then redis.call('HSET', job, 'state', 'done') end
  redis.call('EXPIRE', job, 604800)
  return {0, ARGV[8]}
end
local f = redis.call('HMGET', job, 'next', 'steps', 'cursor')
if kind == 'list' and tonumber(f[1] or '0') > at then return {1, f[1]} end
if kind == 'filter' and tonumber(f[2] or '0') > at then return {1, f[3] or '0'} end
redis.call('HINCRBY', job, 'done', tonumber(ARGV[4]))
redis.call('HINCRBY', job, 'queued', tonumber(ARGV[5]))
redis.call('HINCRBY', job, 'unknown', tonumber(ARGV[6]))
redis.call('HINCRBY', job, 'skipped', tonumber(ARGV[7]))
if kind == 'list' then
  redis.call('HSET', job, 'updated', now, 'next', at + tonumber(ARGV[4]))
  return {0, tostring(at + tonumber(ARGV[4]))}
end
redis.call('HSET', job, 'updated', now, 'cursor', ARGV[8], 'steps', at + 1)
return {0, ARGV[8]}
