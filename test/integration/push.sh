#!/usr/bin/env bash
# APNs end to end: enqueue over REST -> mdmd pushes to the mock APNs with the
# device's token and PushMagic -> mdmsim, woken by the mock's record, polls,
# executes, answers -> the result is in the history, the queue is empty, and
# no further push is sent.  Then dead tokens, topic mismatch, POST /v1/push,
# and push certificates mdmd must refuse.
. "$(dirname "$0")/lib.sh"

make_push_pki || { fail "push PKI"; finish; }
start_mock_apns || { fail "mock APNs starts"; finish; }
start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "push_coalesce_ms 1500"
apns_conf >>"$D/mdmd.conf"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
check "mdmd reads the topic from the push certificate" grep -q "event=apns_ready topic=$TOPIC" "$T/mdmd.log"

SIM=("$BIN/mdmsim" --url "https://127.0.0.1:$MDM/mdm" --ca "$CA" --ca-key "$D/var/ca/ca.key"
     --identities "$T/ids" --topic "$TOPIC" -q)
"${SIM[@]}" -n 3 --udid-prefix PUSH >"$T/enroll.out" 2>&1
check "three simulated devices enroll" test "$(zcard_all mdm:devices)" = 3
"${SIM[@]}" -n 3 --udid-prefix PUSH --skip-enroll --push-file "$T/pushes" --duration 20 \
    --ledger "$T/ledger" >"$T/sim.out" 2>&1 &
SIMPID=$!; PIDS+=("$SIMPID")

U=PUSH-000000
api POST /v1/commands '{"udids":["PUSH-000000","PUSH-000001","PUSH-000002"],"command":{"RequestType":"DeviceInformation","Queries":["DeviceName","OSVersion"]}}' >/dev/null
C1=$(jget "$T/api" command_uuid)
api POST /v1/commands '{"udids":["PUSH-000000"],"command":{"RequestType":"ProfileList"}}' >/dev/null
C2=$(jget "$T/api" command_uuid)
check "every device's result reaches its history" wait_for 15 bash -c \
    "for u in PUSH-000000 PUSH-000001 PUSH-000002; do redis-cli -p $REDIS_PORT xrange \"mdm:res:{\$u}\" - + | grep -q $C1 || exit 1; done"
check "the second command ran too" wait_for 10 bash -c "redis-cli -p $REDIS_PORT xrange 'mdm:res:{$U}' - + | grep -q $C2"
check "queues are empty" test "$(R llen "mdm:q:{$U}")$(R llen 'mdm:q:{PUSH-000001}')" = 00
token=$(R hget "mdm:dev:{$U}" token); magic=$(R hget "mdm:dev:{$U}" push_magic)
check "the mock got the device's token and PushMagic" grep -q "^$token $magic 200" "$T/pushes"
check "two enqueues within the window gave one push" test "$(grep -c "^$token " "$T/pushes")" = 1
check "3 pushes in all" test "$(wc -l <"$T/pushes")" = 3
check "push recorded on the device" test "$(R hget "mdm:dev:{$U}" last_push_outcome)" = ok
check "apns-id recorded" test -n "$(R hget "mdm:dev:{$U}" last_push_id)"
check "mdmsim ledger has the commands" bash -c "grep -q '$U $C1 DeviceInformation Acknowledged' '$T/ledger' && grep -q '$U $C2 ProfileList Acknowledged' '$T/ledger'"
n=$(wc -l <"$T/pushes")
api POST /v1/push '{"udids":["PUSH-000001","NOBODY"]}' >/dev/null
check "POST /v1/push pushes the known device" bash -c "grep -q '\"pushing\":1' '$T/api'"
check "and the mock receives it" wait_for 5 bash -c "[ \$(wc -l <'$T/pushes') = $((n + 1)) ]"

# The mock now says the token is dead.
kill "$APNS_PID"; wait "$APNS_PID" 2>/dev/null
start_mock_apns --mode 410 || fail "mock restarts"
sed -i "s/^apns_port .*/apns_port $APNS_PORT/" "$D/mdmd.conf"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"
start_mdmd "$D" || fail "mdmd restarts"
api POST /v1/commands '{"udids":["PUSH-000002"],"command":{"RequestType":"SecurityInfo"}}' >/dev/null
check "410 marks the token invalid" wait_for 5 bash -c "[ -n \"\$(redis-cli -p $REDIS_PORT hget 'mdm:dev:{PUSH-000002}' token_invalid)\" ]"
check "410 writes a push_failed event" wait_for 5 evgrep -qx push_failed
n=$(wc -l <"$T/pushes")
api POST /v1/commands '{"udids":["PUSH-000002"],"command":{"RequestType":"CertificateList"}}' >/dev/null
check "a dead token is not pushed again" bash -c "sleep 0.8; test \$(wc -l <'$T/pushes') = $n"

# A device on another topic is reported, not pushed.
R hset 'mdm:dev:{PUSH-000001}' topic com.apple.mgmt.External.other >/dev/null
api POST /v1/commands '{"udids":["PUSH-000001"],"command":{"RequestType":"SecurityInfo"}}' >/dev/null
check "topic mismatch is logged, not pushed" wait_for 5 grep -q 'event=push_skipped udid=PUSH-000001 reason=topic_mismatch' "$T/mdmd.log"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"; rc=$?
check "SIGTERM exits 0" test "$rc" = 0

# --- a bulk job paces on APNs: with APNs slow, the pending pushes stay near
# job_push_backlog (not the fleet), and every device is still pushed once ---
N2=3000
kill "$APNS_PID" 2>/dev/null; wait "$APNS_PID" 2>/dev/null
start_mock_apns --delay-ms 100 --max-streams 100 || fail "slow mock APNs starts"
# (the cluster layout: mdm:devices:{bNN}, NN = CRC16(UDID) % 16384 % 64, lib.sh's bkey)
R eval "local function crc16(s)
  local c = 0
  for i = 1, #s do
    c = bit.bxor(c, bit.lshift(string.byte(s, i), 8))
    for _ = 1, 8 do
      if bit.band(c, 0x8000) ~= 0 then c = bit.bxor(bit.lshift(c, 1), 0x1021) else c = bit.lshift(c, 1) end
      c = bit.band(c, 0xffff)
    end
  end
  return c
end
for i = 1, tonumber(ARGV[1]) do
  local u = string.format('PACE-%06d', i)
  redis.call('HSET', 'mdm:dev:{' .. u .. '}', 'udid', u, 'state', 'enrolled', 'topic', ARGV[2],
             'token', string.format('%064x', i), 'push_magic', 'M' .. i)
  local k = 'mdm:devices'
  if ARGV[3] == 'cluster' then k = string.format('mdm:devices:{b%02d}', crc16(u) % 16384 % 64) end
  redis.call('ZADD', k, 0, u)
end" 0 $N2 "$TOPIC" "$(layout_cluster && echo cluster)" >/dev/null
check "seeded into the layout's buckets" test "$(zcard_all mdm:devices)" = $((N2 + 3))
D2=$T/b
write_conf "$D2" "redis 127.0.0.1:$REDIS_PORT" "push_coalesce_ms 0" "job_push_backlog 200"
apns_conf >>"$D2/mdmd.conf"
start_mdmd "$D2" || fail "mdmd (paced) starts"
KEY2=$(cat "$D2/var/api.key")
pushes0=$(wc -l <"$T/pushes")
code=$(curl -s -o "$T/job" -w '%{http_code}' --cacert "$CA" -H "Authorization: Bearer $KEY2" \
    --data '{"filter":"all_enrolled","command":{"RequestType":"SecurityInfo"}}' "https://127.0.0.1:$PUB/v1/commands")
JOB=$(jget "$T/job" job_id)
peak=0
for _ in $(seq 600); do
    p=$(curl -s --cacert "$CA" -H "Authorization: Bearer $KEY2" "https://127.0.0.1:$PUB/metrics" |
        awk '$1 == "mdmd_push_pending" { print $2 }')
    [ "${p:-0}" -gt "$peak" ] && peak=$p
    grep -q "event=job_done job=$JOB" "$T/mdmd.log" && break
    sleep 0.05
done
check "the job ran (202) and finished" bash -c "[ $code = 202 ] && grep -q 'event=job_done job=$JOB' '$T/mdmd.log'"
check "it waited for APNs" grep -qE "event=job_done job=$JOB .*push_waits=[1-9]" "$T/mdmd.log"
echo "pending pushes peaked at $peak with job_push_backlog 200 ($N2 devices)"
check "pending pushes stayed near the backlog, not the fleet (peak $peak)" test "$peak" -le 1200
check "every device pushed once" wait_for 30 bash -c "[ \$((\$(wc -l <'$T/pushes') - $pushes0)) -ge $N2 ]"
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"

# --- SIGTERM while a job waits for a stalled APNs to catch up: it ends at
# once, recorded failed with where it stopped (its cursor), not left
# "running" until the drain deadline passes ---
kill "$APNS_PID" 2>/dev/null; wait "$APNS_PID" 2>/dev/null
start_mock_apns --delay-ms 600000 --max-streams 1000 || fail "stalled mock APNs starts"
D3=$T/c
write_conf "$D3" "redis 127.0.0.1:$REDIS_PORT" "push_coalesce_ms 0" "job_push_backlog 200" \
    "shutdown_timeout_s 4"
apns_conf >>"$D3/mdmd.conf"
start_mdmd "$D3" || fail "mdmd (stalled APNs) starts"
curl -s -o "$T/job3" --cacert "$CA" -H "Authorization: Bearer $(cat "$D3/var/api.key")" \
    --data '{"filter":"all_enrolled","command":{"RequestType":"ProfileList"}}' "https://127.0.0.1:$PUB/v1/commands"
JOB3=$(jget "$T/job3" job_id)
check "the job waits for APNs" wait_for 20 grep -q "event=job_push_wait job=$JOB3" "$T/mdmd.log"
t0=$(date +%s%N)
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
JK=$(gkey "job:$JOB3"); st=$(R hget "$JK" state); err=$(R hget "$JK" error); cur=$(R hget "$JK" cursor)
check "SIGTERM with a job waiting for APNs exits 0, within the drain deadline (${ms} ms)" \
    bash -c "[ $rc = 0 ] && ! grep -q 'event=shutdown_timeout' '$T/mdmd.log'"
check "its record says failed, not running ($st: $err)" test "$st" = failed
check "and where it stopped: its cursor ($cur)" \
    bash -c "[ -n '$cur' ] && echo '$err' | grep -q 'mdmd stopped after [0-9]* devices scanned (cursor $cur)'"

# Push certificates mdmd must refuse at startup.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=no uid" \
    -keyout "$T/nouid.key" -out "$T/nouid.crt" -days 2 2>/dev/null
"$BIN/mdmd" -c "$D/mdmd.conf" -o apns_cert_file="$T/nouid.crt" -o apns_key_file="$T/nouid.key" \
    >"$T/nouid.out" 2>&1; rc=$?
check "a push certificate without a topic UID: refuses to start" test "$rc" -ne 0
# -days 0 ends the certificate's validity the second it is made.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/UID=$TOPIC/CN=old" \
    -keyout "$T/old.key" -out "$T/old.crt" -days 0 2>/dev/null
wait_for 5 bash -c "! openssl x509 -in '$T/old.crt' -noout -checkend 0"
"$BIN/mdmd" -c "$D/mdmd.conf" -o apns_cert_file="$T/old.crt" -o apns_key_file="$T/old.key" \
    >"$T/old.out" 2>&1; rc=$?
check "an expired push certificate: refuses to start" test "$rc" -ne 0
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"
finish
