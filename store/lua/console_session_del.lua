-- KEYS: session:   (a prefix: + the SHA-1 of the id is the session's hash)
-- ARGV: session_id
-- Logout: the session is gone for good.  Returns 1 if it existed.
return redis.call('DEL', KEYS[1] .. redis.sha1hex(ARGV[1]))
