-- KEYS: fail_user fail_addr   ARGV: ok(1|0) window_s
-- A failure counts against the user and the address; each counter expires
-- window_s after its first failure (a fixed window).  A success clears the
-- user's counter only: the address keeps its count, so one known password
-- does not buy an address fresh guesses at other users.
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[1])
  return 0
end
for i = 1, 2 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2])) end
end
return 1
