-- KEYS: user users   ARGV: name mode(create|passwd) hash role now
-- Creates a user (refused when the name is taken) or replaces the password
-- of an existing one.  Returns 'ok', 'exists' or 'not_found'.
local user, users = KEYS[1], KEYS[2]
local name, mode, hash, role, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local exists = redis.call('EXISTS', user) == 1
if mode == 'create' then
  if exists then return 'exists' end
  redis.call('HSET', user, 'hash', hash, 'role', role, 'created', now, 'updated', now)
  redis.call('SADD', users, name)
  return 'ok'
end
if not exists then return 'not_found' end
redis.call('HSET', user, 'hash', hash, 'updated', now)
return 'ok'
