-- KEYS: item assign user:   (user: a prefix, + name is a user's hash, same slot)
--       ARGV: everyone(1|0) user...
-- Replaces the assignment.  Returns 'not_found' for an unknown item, or
-- {unknown user...} (nothing changed unless that list is empty).
if redis.call('EXISTS', KEYS[1]) == 0 then return 'not_found' end
local unknown = {}
for i = 2, #ARGV do
  if redis.call('EXISTS', KEYS[3] .. ARGV[i]) == 0 then unknown[#unknown + 1] = ARGV[i] end
end
if #unknown > 0 then return unknown end
redis.call('DEL', KEYS[2])
if #ARGV > 1 then redis.call('SADD', KEYS[2], unpack(ARGV, 2)) end
redis.call('HSET', KEYS[1], 'everyone', ARGV[1])
return {}
