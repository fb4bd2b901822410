-- KEYS: idx dev:   (dev: a prefix, + {UDID} is a device's record; the single
--       layout only, as devices.lua)   ARGV: query offset limit state(or '') budget
-- Devices whose UDID, serial number, device name or user starts with query,
-- case-insensitively (ASCII), from the index mdm:idx (maintained by the
-- check-in scripts: mdm_index in prelude.lua).  The offset counts index
-- entries, so pages stay O(log N + offset) whatever the fleet size; a device
-- matched by two fields appears once per page.  Returns
-- {next_offset (-1 at the end), matching index entries, {record}...}.
local q = string.lower(ARGV[1])
local offset, limit, state = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local budget = tonumber(ARGV[5])
local lo, hi = '[' .. q, '[' .. q .. '\255'
local total = redis.call('ZLEXCOUNT', KEYS[1], lo, hi)
local out, seen, scanned = {}, {}, 0
while #out < limit and scanned < budget do
  local m = redis.call('ZRANGEBYLEX', KEYS[1], lo, hi, 'LIMIT', offset, limit)
  if #m == 0 then return {-1, total, out} end
  for _, e in ipairs(m) do
    offset = offset + 1
    scanned = scanned + 1
    local udid = string.match(e, '%z([^%z]*)%z[^%z]*$')
    if udid and not seen[udid] then
      seen[udid] = true
      local dev = KEYS[2] .. '{' .. udid .. '}'
      local rec = redis.call('HGETALL', dev)
      if #rec > 0 and (state == '' or redis.call('HGET', dev, 'state') == state) then
        out[#out + 1] = rec
        if #out == limit then break end
      end
    end
  end
end
if offset >= total then offset = -1 end
return {offset, total, out}
