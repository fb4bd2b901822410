-- KEYS: failed enrollments invalid: status:   ARGV: mode(failed|eq|ne) item json offset limit budget
-- The fleet by status: enrollments with a declaration not valid (failed),
-- (by identifier, from mdm:ddm:failed), or whose status item equals (eq) /
-- does not equal (ne, missing included) a JSON value: a walk over
-- mdm:ddm:enrollments newest first, at most budget entries per call.  Returns {next_offset (-1: end), total, {enrollment, json or ''}...}.
-- Single layout only (the cluster layout merges the buckets in
-- store_fanout.c): an enrollment's keys are KEYS[3]/KEYS[4] (prefix keys)
-- .. {UDID}[:UserID].
local failed, enrollments = KEYS[1], KEYS[2]
local function ekey(prefix, udid, uid)
  local k = prefix .. '{' .. udid .. '}'
  if uid ~= '' then k = k .. ':' .. uid end
  return k
end
local mode, item, want = ARGV[1], ARGV[2], ARGV[3]
local offset, limit, budget = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if mode == 'failed' then
  -- The failed set itself, sorted: no walk over the fleet.
  local ids = redis.call('SMEMBERS', failed)
  table.sort(ids)
  local out = {}
  for i = offset + 1, math.min(#ids, offset + limit) do
    local udid, uid = string.match(ids[i], '^([^:]+):?(.*)$')
    out[#out + 1] = {ids[i], tostring(redis.call('SCARD', ekey(KEYS[3], udid, uid)))}
  end
  local nxt = offset + limit
  if nxt >= #ids then nxt = -1 end
  return {nxt, #ids, out}
end
local total = redis.call('ZCARD', enrollments)
local out, scanned = {}, 0
while #out < limit and scanned < budget do
  local ids = redis.call('ZREVRANGE', enrollments, offset, offset + limit - 1)
  if #ids == 0 then return {-1, total, out} end
  for _, e in ipairs(ids) do
    offset = offset + 1
    scanned = scanned + 1
    local udid, uid = string.match(e, '^([^:]+):?(.*)$')
    local v
    local hit
    if mode == 'failed' then
      hit = redis.call('SISMEMBER', failed, e) == 1
      v = redis.call('SCARD', ekey(KEYS[3], udid, uid))
    else
      v = redis.call('HGET', ekey(KEYS[4], udid, uid), item)
      if mode == 'eq' then hit = v == want else hit = v ~= want end
    end
    if hit then
      out[#out + 1] = {e, tostring(v or '')}
      if #out == limit then break end
    end
  end
end
if offset >= total then offset = -1 end
return {offset, total, out}
