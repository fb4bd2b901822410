-- KEYS: res   ARGV: end ("+" or "(<id>", exclusive), count, max_bytes
-- A page of the result stream, newest first: at most count entries, and
-- none past max_bytes of field names and values (the first always, however
-- large).  Entry by entry, so Redis never builds (and mdmd never reads) more
-- than one entry past the bound.  Returns {entries, more}: more = 1 when
-- the page stopped at max_bytes with older entries left.
local cursor, count, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out, bytes, more = {}, 0, 0
while #out < count do
    local e = redis.call('XREVRANGE', KEYS[1], cursor, '-', 'COUNT', 1)
    if #e == 0 then break end
    local size = 0
    for _, v in ipairs(e[1][2]) do size = size + #v end
    if #out > 0 and bytes + size > max then
        more = 1
        break
    end
    out[#out + 1] = e[1]
    bytes = bytes + size
    cursor = '(' .. e[1][1]
end
return {out, more}
