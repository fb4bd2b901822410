-- KEYS: item set   ARGV: id now [field value]...
-- Stores a configuration profile, provisioning profile or app under its id.
-- A new id starts unassigned; uploading an id again replaces its fields and
-- keeps its assignment.  Returns 1 for a new item, 0 for a replacement.
local item, set, id, now = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local new = redis.call('EXISTS', item) == 0
if new then
  redis.call('HSET', item, 'created', now, 'everyone', '0')
else
  -- Fields of the old version that the new one does not set must go; the
  -- creation time and the assignment stay.
  for _, f in ipairs(redis.call('HKEYS', item)) do
    if f ~= 'created' and f ~= 'everyone' then redis.call('HDEL', item, f) end
  end
end
redis.call('HSET', item, 'updated', now, unpack(ARGV, 3))
redis.call('SADD', set, id)
if new then return 1 end
return 0
