-- KEYS: chal fail_addr   ARGV: addr_max window_s
-- Takes a one-time enrollment challenge (OTA mdm:enroll:chal:, SCEP
-- mdm:scep:chal:): its owner, deleted in the same step, so two requests
-- racing with one challenge cannot both have it.  A challenge that does not
-- exist counts as a failure of the client address (mdm:chalfail:addr:<ip>,
-- a fixed window of window_s from the first); an address that has used up
-- addr_max failures is refused before the lookup, so challenges cannot be
-- guessed at speed.  Returns {'ok', owner}, {'unknown'} or {'limited', ttl_s}.
local n = tonumber(redis.call('GET', KEYS[2]) or '0')
if n >= tonumber(ARGV[1]) then
  local ttl = redis.call('TTL', KEYS[2])
  if ttl < 1 then ttl = 1 end
  return {'limited', ttl}
end
local who = redis.call('GETDEL', KEYS[1])
if who then return {'ok', who} end
if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2])) end
return {'unknown'}
