-- KEYS: g (the configuration's prefix: mdm: or mdm:{g}:), [dev (single layout)]
-- ARGV: [user (cluster layout: mdmd read the record's user first)]
-- What a newly enrolled device gets: every configuration profile, then every
-- provisioning profile, then every app assigned to the device's user (field
-- `user` of its record) or to everyone, each kind sorted by id.  Returns
-- {user, {{kind, id, body, manifest_url, itunes_store_id}...}}.  Cost grows
-- with the number of items (not of users or devices): fine for the tens to
-- hundreds of items a fleet publishes.  Names learned here (an item, its
-- assignment) are built from the prefix g, same hash tag: the script's slot.
local g = KEYS[1]
local user = ARGV[1] or ''
if KEYS[2] then user = redis.call('HGET', KEYS[2], 'user') or '' end
local out = {}
for _, kind in ipairs({'profile', 'provprofile', 'app'}) do
  local ids = redis.call('SMEMBERS', g .. kind .. 's')
  table.sort(ids)
  for _, id in ipairs(ids) do
    local item = g .. kind .. ':' .. id
    local f = redis.call('HMGET', item, 'everyone', 'body', 'manifest_url', 'itunes_store_id')
    local mine = user ~= '' and
      redis.call('SISMEMBER', g .. 'assign:' .. kind .. ':' .. id, user) == 1
    if f[1] == '1' or mine then
      out[#out + 1] = {kind, id, f[2] or '', f[3] or '', f[4] or ''}
    end
  end
end
return {user, out}
