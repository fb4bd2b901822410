-- KEYS: events replay dead   ARGV: group src id outcome [event_id payload error attempts now url]
-- Ends one delivery: acknowledges the group entry (or deletes the replayed
-- one); outcome 'dead' first parks the payload in the dead-letter stream.
local ev, rp, dead = KEYS[1], KEYS[2], KEYS[3]
local g, src, id, outcome = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if outcome == 'dead' then
  redis.call('XADD', dead, 'MAXLEN', '~', 100000, '*', 'group', g, 'event_id', ARGV[5],
             'payload', ARGV[6], 'error', ARGV[7], 'attempts', ARGV[8], 'dead_at', ARGV[9],
             'url', ARGV[10])
end
if src == 'replay' then return redis.call('XDEL', rp, id) end
return redis.call('XACK', ev, g, id)
