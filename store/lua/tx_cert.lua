-- KEYS: tx (mdm:{g}:enroll:tx:<id>)   ARGV: fp
-- Names fp as the OTA identity of a phase 1 transaction, in the cluster
-- layout (ota_register.lua's last step there), and returns the one it named
-- before ('' for none): not the one this try read first when another try of
-- the same request ran in between, which mdmd then revokes, so that one
-- transaction keeps one live identity.  A transaction closed meanwhile
-- (answered) is not made again: ''.
if redis.call('EXISTS', KEYS[1]) == 0 then return '' end
local prev = redis.call('HGET', KEYS[1], 'cert') or ''
redis.call('HSET', KEYS[1], 'cert', ARGV[1])
return prev
