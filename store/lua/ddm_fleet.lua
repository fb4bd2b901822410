-- KEYS: -   ARGV: mode(failed|eq|ne) item json offset limit budget
-- The fleet by status: enrollments with a declaration not valid (failed),
-- (by identifier, from mdm:ddm:failed), or whose status item equals (eq) /
-- does not equal (ne, missing included) a JSON value: a walk over
-- mdm:ddm:enrollments newest first, at most budget entries per call.  Returns {next_offset (-1: end), total, {enrollment, json or ''}...}.
local mode, item, want = ARGV[1], ARGV[2], ARGV[3]
local offset, limit, budget = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if mode == 'failed' then
  -- The failed set itself, sorted: no walk over the fleet.
  local ids = redis.call('SMEMBERS', 'mdm:ddm:failed')
  table.sort(ids)
  local out = {}
  for i = offset + 1, math.min(#ids, offset + limit) do
    local udid, uid = string.match(ids[i], '^([^:]+):?(.*)$')
    out[#out + 1] = {ids[i], tostring(redis.call('SCARD', ddm_key('invalid', udid, uid)))}
  end
  local nxt = offset + limit
  if nxt >= #ids then nxt = -1 end
  return {nxt, #ids, out}
end
local total = redis.call('ZCARD', 'mdm:ddm:enrollments')
local out, scanned = {}, 0
while #out < limit and scanned < budget do
  local ids = redis.call('ZREVRANGE', 'mdm:ddm:enrollments', offset, offset + limit - 1)
  if #ids == 0 then return {-1, total, out} end
  for _, e in ipairs(ids) do
    offset = offset + 1
    scanned = scanned + 1
    local udid, uid = string.match(e, '^([^:]+):?(.*)$')
    local v
    local hit
    if mode == 'failed' then
      hit = redis.call('SISMEMBER', 'mdm:ddm:failed', e) == 1
      v = redis.call('SCARD', ddm_key('invalid', udid, uid))
    else
      v = redis.call('HGET', ddm_key('status', udid, uid), item)
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
