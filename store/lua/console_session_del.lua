-- ARGV: session_id
-- Logout: the session is gone for good.  Returns 1 if it existed.
return redis.call('DEL', 'mdm:session:' .. redis.sha1hex(ARGV[1]))
