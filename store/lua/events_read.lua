-- KEYS: events   ARGV: after count [backlog]
-- The live feed's read (handlers/feed): up to count entries of the event
-- stream after the id `after`, oldest first, as JSON
-- {"last": id, "gap": bool, "events": [[id, {field: value...}]...]}.  last is
-- the id of the last entry returned (or `after`); with `after` empty, the
-- newest `backlog` entries (none by default) and last is the stream's newest
-- id ("0-0" when empty): where a new reader starts.
local key, after, n = KEYS[1], ARGV[1], tonumber(ARGV[2])
local function last_id()
  local t = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  return t[1] and t[1][1] or '0-0'
end
local function fields(kv)
  local f = {}
  for i = 1, #kv, 2 do f[kv[i]] = kv[i + 1] end
  return cjson.encode(f)
end
local function answer(last, gap, out)
  return '{"last":' .. cjson.encode(last) .. ',"gap":' .. tostring(gap) .. ',"events":[' ..
         (#out > 0 and ('[' .. table.concat(out, '],[') .. ']') or '') .. ']}'
end
if after == '' then
  local b, out = tonumber(ARGV[3] or '0'), {}
  if b > 0 then
    local t = redis.call('XREVRANGE', key, '+', '-', 'COUNT', b)
    for i = #t, 1, -1 do out[#out + 1] = cjson.encode(t[i][1]) .. ',' .. fields(t[i][2]) end
  end
  return answer(last_id(), false, out)
end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
-- gap: `after` itself is gone (trimmed), so entries after it may be too.
local gap = false
local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]
if first and after ~= '0-0' and after ~= '0' then
  local fm, fs = parse(first[1])
  local am, as = parse(after)
  gap = am ~= nil and (am < fm or (am == fm and as < fs))
end
local out, last = {}, after
for _, e in ipairs(redis.call('XRANGE', key, '(' .. after, '+', 'COUNT', n)) do
  out[#out + 1] = cjson.encode(e[1]) .. ',' .. fields(e[2])
  last = e[1]
end
return answer(last, gap, out)
