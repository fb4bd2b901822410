-- The fleet writes of a device script in the cluster layout (fx_reply,
-- prelude.lua), made on the device's bucket after the script answered.
-- KEYS: the fleet block of that bucket (store_fx_keys, store_argv.c)
-- ARGV: the writes as the script returned them: n, then the n strings of one
-- write {kind, name, args...}, for each write.
fx_bind(1)
local i = 1
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  fx_do({unpack(ARGV, i + 1, i + n)})
  i = i + n + 1
end
return #ARGV
