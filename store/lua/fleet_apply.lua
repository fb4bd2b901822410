-- A device's fleet writes in the cluster layout (fx_reply, prelude.lua),
-- made on the device's bucket after its script answered.
-- KEYS: the fleet block of that bucket (store_fx_keys, store_argv.c), then
--   its applied-sequence hash (outbox name -> the last sequence applied)
-- ARGV: the outbox's name, then seq and JSON for each entry it returned: the
--   JSON is the writes, n then the n strings of one write {kind, name, args...}
--   for each write.
-- Entries are applied in sequence order, each once: one applied before (its
-- acknowledgement lost, or two requests of the device raced) is skipped.
-- Returns the last sequence applied, for fx_ack.lua.
fx_bind(1)
local seen_key, box = KEYS[13], ARGV[1]
local seen = tonumber(redis.call('HGET', seen_key, box) or '0')
local entries = {}
for i = 2, #ARGV - 1, 2 do
  local seq = tonumber(ARGV[i])
  if seq and seq > seen then entries[#entries + 1] = {seq, ARGV[i + 1]} end
end
table.sort(entries, function(a, b) return a[1] < b[1] end)
local top = seen
for _, e in ipairs(entries) do
  local w = cjson.decode(e[2])
  local i = 1
  while i <= #w do
    local n = tonumber(w[i])
    fx_do({unpack(w, i + 1, i + n)})
    i = i + n + 1
  end
  top = e[1]
end
if top > seen then redis.call('HSET', seen_key, box, top) end
return top
