-- KEYS: dev   ARGV: -
-- What a newly enrolled device gets: every configuration profile, then every
-- provisioning profile, then every app assigned to the device's user (field
-- `user` of its record) or to everyone, each kind sorted by id.  Returns
-- {user, {{kind, id, body, manifest_url, itunes_store_id}...}}.  Cost grows
-- with the number of items (not of users or devices): fine for the tens to
-- hundreds of items a fleet publishes.
local user = redis.call('HGET', KEYS[1], 'user') or ''
local out = {}
for _, kind in ipairs({'profile', 'provprofile', 'app'}) do
  local ids = redis.call('SMEMBERS', 'mdm:' .. kind .. 's')
  table.sort(ids)
  for _, id in ipairs(ids) do
    local item = 'mdm:' .. kind .. ':' .. id
    local f = redis.call('HMGET', item, 'everyone', 'body', 'manifest_url', 'itunes_store_id')
    local mine = user ~= '' and
      redis.call('SISMEMBER', 'mdm:assign:' .. kind .. ':' .. id, user) == 1
    if f[1] == '1' or mine then
      out[#out + 1] = {kind, id, f[2] or '', f[3] or '', f[4] or ''}
    end
  end
end
return {user, out}
