-- KEYS: dead   ARGV: count   Newest first, as a JSON array of
-- {id, group, event_id, payload, error, attempts, dead_at, url}.
local r = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', tonumber(ARGV[1]))
local out = {}
for _, e in ipairs(r) do
  local o = {id = e[1]}
  for i = 1, #e[2], 2 do o[e[2][i]] = e[2][i + 1] end
  out[#out + 1] = o
end
if #out == 0 then return '[]' end
return cjson.encode(out)
