-- KEYS: user users profiles provprofiles apps assign:profile: assign:provprofile: assign:app:
--       (the last three are prefixes: + id is the item's assignment set, in
--       the same slot)   ARGV: name
-- Deletes a user and takes it out of every content assignment, so a new user
-- of the same name does not inherit them.  Returns 1, or 0 when unknown.
local user, users, name = KEYS[1], KEYS[2], ARGV[1]
if redis.call('DEL', user) == 0 then return 0 end
redis.call('SREM', users, name)
for k = 1, 3 do
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[2 + k])) do
    redis.call('SREM', KEYS[5 + k] .. id, name)
  end
end
return 1
