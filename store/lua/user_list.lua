-- KEYS: users user:   (user: a prefix, + name is a user's hash, same slot)   ARGV: -
-- Returns {{name, role, created, updated}...} sorted by name (no hashes).
local names = redis.call('SMEMBERS', KEYS[1])
table.sort(names)
local out = {}
for _, n in ipairs(names) do
  local u = redis.call('HMGET', KEYS[2] .. n, 'role', 'created', 'updated')
  if u[1] then out[#out + 1] = {n, u[1], u[2] or '', u[3] or ''} end
end
return out
