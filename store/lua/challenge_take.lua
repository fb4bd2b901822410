-- KEYS: chal fail_addr [tx]   ARGV: addr_max window_s [tx_ttl_s static]
-- Takes a one-time enrollment challenge (OTA mdm:enroll:chal:, SCEP
-- mdm:scep:chal:): its owner, deleted in the same step, so two requests
-- racing with one challenge cannot both have it.  A challenge that does not
-- exist counts as a failure of the client address (mdm:chalfail:addr:<ip>,
-- a fixed window of window_s from the first); an address that has used up
-- addr_max failures is refused before the lookup, so challenges cannot be
-- guessed at speed.  Returns {'ok', owner}, {'unknown'} or {'limited', ttl_s}.
-- With tx (SCEP: mdm:scep:tx:<request id>, a hash of what a retry of the same
-- request repeats, key and challenge included): a request seen before gets
-- {'again', owner, issued certificate DER hex or ''} and takes nothing, since
-- its answer may have been lost after it used the challenge up; a first take
-- records the owner there for tx_ttl_s.  OTA phase 1 passes
-- mdm:enroll:tx:<id> (challenge, UDID, signer) the same way, cert there
-- being the fingerprint of the OTA identity registered for it, and deletes
-- it once its answer is sent.  static '1': the challenge is the
-- configured static one, there is nothing to take.
local tx = KEYS[3]
if tx then
  local t = redis.call('HMGET', tx, 'owner', 'cert')
  if t[1] then return {'again', t[1], t[2] or ''} end
end
local who = ''
if ARGV[4] ~= '1' then
  local n = tonumber(redis.call('GET', KEYS[2]) or '0')
  if n >= tonumber(ARGV[1]) then
    local ttl = redis.call('TTL', KEYS[2])
    if ttl < 1 then ttl = 1 end
    return {'limited', ttl}
  end
  who = redis.call('GETDEL', KEYS[1])
  if not who then
    if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2])) end
    return {'unknown'}
  end
end
if tx then
  redis.call('HSET', tx, 'owner', who)
  redis.call('EXPIRE', tx, tonumber(ARGV[3]))
end
return {'ok', who}
