-- KEYS: enrollment (ddm_d: 7, the cluster layout's)   ARGV: token now_iso items(1|0) now_ms
-- Cluster layout, the device's slot: the last step of the tokens and
-- declaration-items endpoints (ddm_tokens.lua, ddm_items.lua): records the
-- sync token.  Returns its timestamp.
local d = ddm_d(1)
local time = ddm_token_d(d, ARGV[1], ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', d.en, 'items_token', ARGV[1], 'items_at', ARGV[4]) end
return time
