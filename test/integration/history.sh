#!/usr/bin/env bash
# Command history (issue 16): results are stored packed (zstd with the built-in
# dictionary) and come back through the API as the device sent them; history
# is bounded in entries (redis_history_len) and in bytes
# (redis_history_max_bytes), oldest first; a result alone over the byte limit
# keeps its entry without the body; DeviceInformation answers write only the
# fields that changed and keep the search index right.
. "$(dirname "$0")/lib.sh"
start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "redis_history_len 5" "redis_history_max_bytes 4096"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
U=SIM-HIST-1
check "device enrolls" enroll_device d1 $U

# run_cmd TYPE [EXTRA-KEY EXTRA-VALUE...]: queues TYPE, fetches it, answers
# Acknowledged with the extra keys; sets C (its UUID).
run_cmd() {
    local rt=$1 q=""; shift
    [ "$rt" = DeviceInformation ] && q=',"Queries":["DeviceName","OSVersion"]'
    api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"'$rt'"'"$q"'}}' >/dev/null
    C=$(jget "$T/api" command_uuid)
    poll d1 $U Idle
    [ "$NEXT" = "$C" ] || { echo "expected $C, got '$NEXT'"; return 1; }
    poll d1 $U Acknowledged "$C" "$@"
    [ "$CODE" = 200 ]
}
# The stored value of field f of the newest history entry, as hex.
newest_hex() { R --raw eval "local e = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1][2]
  for i = 1, #e, 2 do if e[i] == ARGV[1] then return e[i + 1] end end return ''" 1 "mdm:res:{$U}" "$1" | head -c -1 | od -An -tx1 | tr -d ' \n'; }
hist_sum() { R eval "local s = 0 for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  for i = 1, #e[2], 2 do if e[2][i] == 'result' then s = s + #e[2][i + 1] end end end return s" 1 "mdm:res:{$U}"; }

# --- packed, and given back as sent ---
QR="<dict><key>DeviceName</key><string>Kim's phone</string><key>OSVersion</key><string>17.5.1</string><key>SerialNumber</key><string>SN-$U</string><key>WiFiMAC</key><string>a4:83:e7:65:43:21</string><key>BatteryLevel</key><real>0.5</real><key>IsSupervised</key><true/></dict>"
check "DeviceInformation answered" run_cmd DeviceInformation QueryResponses "$QR"
sent=$(wc -c <"$T/d1.poll")
hex=$(newest_hex result)
check "result stored packed (magic \\0zr1)" test "${hex:0:8}" = 007a7231
check "packed result smaller than sent ($(( ${#hex} / 2 )) < $sent)" test $(( ${#hex} / 2 )) -lt "$sent"
check "API gives the result back as sent" bash -c "[ $(api GET "/v1/devices/$U/commands") = 200 ] && grep -q '\"DeviceName\":\"Kim' '$T/api' && grep -q '\"WiFiMAC\":\"a4:83:e7:65:43:21\"' '$T/api'"
# A binary plist answer is kept as binary (no XML conversion) and reads back the same.
C_BIN=""
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"SecurityInfo"}}' >/dev/null
C_BIN=$(jget "$T/api" command_uuid)
poll d1 $U Idle
plist_msg "$T/bin.xml" UDID $U Status Acknowledged CommandUUID "$C_BIN" SecurityInfo "<dict><key>PasscodePresent</key><true/></dict>"
plistutil -i "$T/bin.xml" -o "$T/bin.plist" -f bin >/dev/null 2>&1
check "binary plist answer: 200" test "$(mdm_put /mdm/connect d1 "$T/bin.plist")" = 200
check "binary plist result readable through the API" bash -c "[ $(api GET "/v1/devices/$U/commands") = 200 ] && grep -q '\"PasscodePresent\":true' '$T/api'"

# --- only changed fields written; the index follows a change ---
check "search finds the device name" test -n "$(R zrangebylex mdm:idx "[kim's phone" "[kim's phone"$'\xff')"
QR2=$(echo "$QR" | sed "s/Kim's phone/Alex phone/")
check "a second answer with a new name" run_cmd DeviceInformation QueryResponses "$QR2"
check "record has the new name" test "$(R hget "mdm:dev:{$U}" device_name)" = "Alex phone"
check "index: new name in, old name out" test "$(R zrangebylex mdm:idx "[alex phone" "[alex phone"$'\xff' | grep -ac .):$(R zrangebylex mdm:idx "[kim's phone" "[kim's phone"$'\xff' | grep -ac .)" = 1:0
R hset "mdm:dev:{$U}" os_version 1.0 >/dev/null
check "the same answer again" run_cmd DeviceInformation QueryResponses "$QR2"
check "a field changed behind its back is written again" test "$(R hget "mdm:dev:{$U}" os_version)" = 17.5.1

# --- bounded in entries ---
for i in 1 2 3 4 5 6; do run_cmd DeviceLock >/dev/null; done
check "history holds redis_history_len=5 entries" test "$(R xlen "mdm:res:{$U}")" = 5
check "the newest is the last command" test "$(R xrevrange "mdm:res:{$U}" + - count 1 | sed -n 3p)" = "$C"

# --- bounded in bytes: incompressible results of ~1.8 KB, limit 4096 ---
for i in 1 2 3 4; do
    blob=$(head -c 1300 /dev/urandom | base64 -w0)
    run_cmd ProfileList ProfileList "<array><dict><key>Blob</key><data>$blob</data></dict></array>" >/dev/null
done
s=$(hist_sum)
check "history results within redis_history_max_bytes ($s <= 4096)" test "$s" -le 4096 -a "$s" -gt 1500
check "hist_bytes, counted again when over the limit, is what the stream holds" test "$(R hget "mdm:dev:{$U}" hist_bytes)" = "$s"
check "oldest went first: the newest result is kept" test "$(R xrevrange "mdm:res:{$U}" + - count 1 | sed -n 3p)" = "$C"
# A result alone over the limit: its entry stays, without the body.
blob=$(head -c 6000 /dev/urandom | base64 -w0)
check "an answer over the byte limit: 200" run_cmd ProfileList ProfileList "<array><dict><key>Blob</key><data>$blob</data></dict></array>"
check "its entry kept with status, no body, result_bytes" test "$(R xrevrange "mdm:res:{$U}" + - count 1 | sed -n '3p;7p')" = "$C
Acknowledged"
check "result_bytes says how large it was" test "$(R --raw eval "local e = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1][2]
  for i = 1, #e, 2 do if e[i] == 'result_bytes' then return e[i + 1] end end return 0" 1 "mdm:res:{$U}")" -gt 4096
check "API lists it (result null)" bash -c "[ $(api GET "/v1/devices/$U/commands") = 200 ] && grep -q '\"result\":null' '$T/api'"
check "no request failed unexpectedly" bash -c "! grep -q 'status=5' '$T/mdmd.log'"
finish
