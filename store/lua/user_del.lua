-- KEYS: user users   ARGV: name
-- Deletes a user and takes it out of every content assignment, so a new user
-- of the same name does not inherit them.  Returns 1, or 0 when unknown.
local user, users, name = KEYS[1], KEYS[2], ARGV[1]
if redis.call('DEL', user) == 0 then return 0 end
redis.call('SREM', users, name)
for _, kind in ipairs({'profile', 'provprofile', 'app'}) do
  for _, id in ipairs(redis.call('SMEMBERS', 'mdm:' .. kind .. 's')) do
    redis.call('SREM', 'mdm:assign:' .. kind .. ':' .. id, name)
  end
end
return 1
