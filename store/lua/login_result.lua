-- KEYS: fail_user fail_addr   ARGV: -
-- A successful login: login_check.lua counted the attempt as a failure;
-- clear the user's counter and give the address its attempt back (never
-- below zero: the counter may have expired meanwhile).  The address keeps
-- its other failures, so one known password does not buy an address fresh
-- guesses at other users.
redis.call('DEL', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
return 0
