-- KEYS: user fail_user fail_addr   ARGV: user_max addr_max window_s
-- Before a password is checked.  {retry_after_s} when the user or the
-- address has used up its failures (the counter's remaining TTL).
-- Otherwise the attempt is counted as a failure right away, against both,
-- so that parallel attempts cannot all pass this check before the first
-- result is in (login_result.lua refunds it on success); each counter
-- expires window_s after its first failure (a fixed window).  Returns
-- {0, hash, role} for a known user, {0} for an unknown one.
local function limited(key, max)
  local n = tonumber(redis.call('GET', key) or '0')
  if n < tonumber(max) then return 0 end
  local ttl = redis.call('TTL', key)
  if ttl < 1 then ttl = 1 end
  return ttl
end
local wait = math.max(limited(KEYS[2], ARGV[1]), limited(KEYS[3], ARGV[2]))
if wait > 0 then return {wait} end
for i = 2, 3 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], tonumber(ARGV[3])) end
end
local u = redis.call('HMGET', KEYS[1], 'hash', 'role')
if u[1] and u[2] then return {0, u[1], u[2]} end
return {0}
