-- KEYS: session: user:   (prefixes: + the SHA-1 of the id is the session's
--       hash, + a name a user's; one slot)   ARGV: session_id now idle_s max_s
-- Looks a console session up and slides its idle expiry.  Returns
-- {user, csrf}, or {} when there is none: expired (idle, or older than max_s),
-- logged out, or its user was deleted, lost the admin role or changed password
-- since the login (the session is deleted then).
local k = KEYS[1] .. redis.sha1hex(ARGV[1])
local s = redis.call('HMGET', k, 'user', 'csrf', 'created', 'user_updated')
if not s[1] then return {} end
local now, idle, max = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local age = now - tonumber(s[3])
local u = redis.call('HMGET', KEYS[2] .. s[1], 'role', 'updated')
if age >= max * 1000 or u[1] ~= 'admin' or (u[2] or '') ~= s[4] then
  redis.call('DEL', k)
  return {}
end
redis.call('HSET', k, 'seen', ARGV[2])
-- Never past the absolute limit.
redis.call('EXPIRE', k, math.max(1, math.min(idle, math.floor((max * 1000 - age) / 1000))))
return {s[1], s[2]}
