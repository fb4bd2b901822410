-- KEYS: key [set]   ARGV: member [field value]...
-- An admin setting as one hash: replaced whole, or deleted when no field is
-- given; set (optional) lists the members that have one.
redis.call('DEL', KEYS[1])
if #ARGV > 1 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2))
  if KEYS[2] then redis.call('SADD', KEYS[2], ARGV[1]) end
  return 1
end
if KEYS[2] then redis.call('SREM', KEYS[2], ARGV[1]) end
return 0
