-- KEYS: set item: assign:   (item: and assign: are the kind's prefixes: + id
--       is an item's hash or its assignment set, in the same slot)   ARGV: -
-- Returns {{fields..., users}...} for every item of the kind, sorted by id,
-- without the stored bodies (those can be large).
local ids = redis.call('SMEMBERS', KEYS[1])
table.sort(ids)
local out = {}
for _, id in ipairs(ids) do
  local h = redis.call('HGETALL', KEYS[2] .. id)
  local f = {'id', id}
  for i = 1, #h, 2 do
    if h[i] ~= 'body' then f[#f + 1] = h[i]; f[#f + 1] = h[i + 1] end
  end
  local users = redis.call('SMEMBERS', KEYS[3] .. id)
  table.sort(users)
  out[#out + 1] = {f, users}
end
return out
