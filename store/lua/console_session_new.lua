-- KEYS: session: user:   (prefixes: + the SHA-1 of the id is the session's
--       hash, + a name a user's; one slot)   ARGV: session_id user csrf now idle_s
-- A web console session (docs/REDIS.md, "Console sessions").  The key is the
-- SHA-1 of the 256-bit random id, so a Redis dump holds no usable session id.
-- The user's "updated" stamp is kept so that a password change (or deleting
-- and re-creating the user) ends the sessions opened before it.
local k = KEYS[1] .. redis.sha1hex(ARGV[1])
local updated = redis.call('HGET', KEYS[2] .. ARGV[2], 'updated') or ''
redis.call('HSET', k, 'user', ARGV[2], 'csrf', ARGV[3], 'created', ARGV[4], 'seen', ARGV[4],
           'user_updated', updated)
redis.call('EXPIRE', k, tonumber(ARGV[5]))
return 1
