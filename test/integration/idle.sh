#!/usr/bin/env bash
# idle.sh: Idle polls answered from memory (docs/REDIS.md, "Idle polls";
# store/store_idle.c).  A device polling again with nothing queued gets its
# empty answer without a Redis call; everything that could change that
# answer (a command queued, a push awaiting an answer, a revoked
# certificate, CheckOut, the subscriber lost) ends it at once; last_seen is
# still written, behind the answers; idle_cache_ms bounds an entry's life.
# Redis's MONITOR tells which polls reached Redis.
. "$(dirname "$0")/lib.sh"

# Every script that changes what an Idle poll would get says so on mdm:poke:
# one that queues (RPUSH/LPUSH on a device queue), sets push_wait, or
# changes the certificate or the enrollment state of a device record.
# job_udids.lua pushes onto a job's own list of UDIDs, not a queue.
unpoked() {
    local f
    for f in "$TOP"/store/lua/*.lua; do
        case "$(basename "$f")" in prelude.lua | job_udids.lua) continue ;; esac
        grep -qE "'(RPUSH|LPUSH)'|'push_wait', now|HSET', dev, [^)]*'(cert_fp|cert_revoked|state)'|'state', 'revoked'" "$f" &&
            ! grep -qE "mdm_poke\(|fx_revoke\(" "$f" && basename "$f"
    done
}
# ota_use.lua revokes a profile-service (OTA) certificate, which no MDM
# request carries.
check "every script that changes an Idle answer pokes" \
    test "$(unpoked | grep -vx ota_use.lua | tr '\n' ' ')" = ""

start_redis || { fail "redis starts"; finish; }
TOPIC=com.apple.mgmt.test
make_push_pki && start_mock_apns || { fail "mock APNs starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "idle_cache_ms 3000" "redis_timeout_ms 500" "$(apns_conf)"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
U=SIM-IDLE-1
check "device enrolls" enroll_device d1 $U
subscribed() { [ "$(R pubsub numsub mdm:poke | tail -n 1)" -ge 1 ]; }
check "mdmd subscribes to mdm:poke" wait_for 5 subscribed
metric() { curl -s --max-time 10 --cacert "$CA" -H "Authorization: Bearer $(cat "$D/var/api.key")" \
    "https://127.0.0.1:$PUB/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
check "/metrics: the cache is on" wait_for 5 out_is 1 metric mdmd_idle_cache_on

# MONITOR while N polls run: how many of them reached connect.lua (its ARGV
# name the UDID and the status) and how many last_seen writes ("-seen").
R monitor >"$T/monitor" 2>&1 &
MON=$!; PIDS+=("$MON")
sleep 0.3
seen_calls() { grep -c "\"$U\".*\"$1\"" "$T/monitor"; }
polls() { # polls N: N Idle polls, each 200 with nothing; their count of 200s
    local n=$1 ok=0 i
    for ((i = 0; i < n; i++)); do poll d1 $U Idle; [ "$CODE:$NEXT" = "200:" ] && ok=$((ok + 1)); done
    echo $ok
}
poll d1 $U Idle
check "first Idle: 200, nothing to send, asked Redis" test "$CODE:$NEXT:$(seen_calls Idle)" = "200::1"
h0=$(metric mdmd_idle_cache_answers_total)
check "20 more Idle polls: 200, nothing" test "$(polls 20)" = 20
check "  none of them reached connect.lua as a poll" test "$(seen_calls Idle)" = 1
check "  /metrics counts them" test "$(metric mdmd_idle_cache_answers_total)" = $((h0 + 20))

# last_seen: written behind the answers, at most once a second.
ls0=$(R hget "mdm:dev:{$U}" last_seen)
sleep 1.1
poll d1 $U Idle
check "last_seen moves on while polls are answered from memory" wait_for 3 bash -c \
    "[ \$(redis-cli -p $REDIS_PORT hget 'mdm:dev:{$U}' last_seen) -gt $ls0 ]"
check "  by connect.lua's -seen (once or twice so far, not per poll)" \
    bash -c "n=\$(grep -c '\"$U\".*\"-seen\"' '$T/monitor'); [ \$n -ge 1 ] && [ \$n -le 2 ]"
check "  and mdm:devices with it" test "$(R zscore "$(bkey mdm:devices $U)" $U)" = "$(R hget "mdm:dev:{$U}" last_seen)"

# A command queued (any way that queues: the API here) ends it at once.
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"DeviceInformation","Queries":["OSVersion"]}}' >/dev/null
C1=$(jget "$T/api" command_uuid)
poll d1 $U Idle
check "queued command: the next Idle poll gets it" test "$CODE:$NEXT" = "200:$C1"
poll d1 $U Acknowledged "$C1" QueryResponses "<dict><key>OSVersion</key><string>17.6</string></dict>"
check "its result answered with nothing, recorded" test "$CODE:$NEXT:$(R xlen "mdm:res:{$U}")" = "200::1"
check "  with its request_type (mdmd's, from when it sent the command)" \
    test "$(R xrevrange "mdm:res:{$U}" + - count 1 | grep -a -A1 -x request_type | tail -n 1)" = DeviceInformation
n0=$(seen_calls Idle)
check "after it, Idle polls are answered from memory again" test "$(polls 3):$(seen_calls Idle)" = "3:$n0"

# A push accepted by APNs (push_wait): the next poll is the answer to it.
api POST /v1/push '{"udids":["'$U'"]}' >/dev/null
check "a push sent: push_wait set" wait_for 10 bash -c "[ -n \"\$(redis-cli -p $REDIS_PORT hget 'mdm:dev:{$U}' push_wait)\" ]"
poll d1 $U Idle
check "  the next Idle poll asks Redis, which ends push_wait" \
    test "$CODE:$(seen_calls Idle):$(R hget "mdm:dev:{$U}" push_wait)" = "200:$((n0 + 1)):"
check "  and counts the answer to the push" test "$(R hget "$(bkey mdm:pushlat $U)" count)" = 1
# ... and by a DeviceInformation result (connect.lua reads push_wait with
# the reported fields there).
api POST /v1/commands '{"udids":["'$U'"],"command":{"RequestType":"DeviceInformation","Queries":["OSVersion"]}}' >/dev/null
C2=$(jget "$T/api" command_uuid)
pw_set() { [ -n "$(R hget "mdm:dev:{$U}" push_wait)" ]; }
wait_for 10 pw_set # the enqueue's push: the Idle poll below answers it
poll d1 $U Idle
c2=$NEXT
api POST /v1/push '{"udids":["'$U'"]}' >/dev/null
wait_for 10 pw_set
poll d1 $U Acknowledged "$C2" QueryResponses "<dict><key>OSVersion</key><string>17.7</string></dict>"
check "a push answered with a DeviceInformation result: push_wait ends, the answer counted" \
    test "$c2:$CODE:$(R hget "mdm:dev:{$U}" push_wait):$(R hget "$(bkey mdm:pushlat $U)" count):$(R hget "mdm:dev:{$U}" os_version)" = "$C2:200::3:17.7"

# Without the poke (a queue written behind mdmd's back) the memory holds,
# for idle_cache_ms at most.
body=$(printf '<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict><key>CommandUUID</key><string>IDLE-RAW-1</string></dict></plist>')
poll d1 $U Idle
R hset mdm:cmd:IDLE-RAW-1 plist "$body" request_type ProfileList >/dev/null
R rpush "mdm:q:{$U}" IDLE-RAW-1 >/dev/null
poll d1 $U Idle
check "a queue written without a poke: still answered from memory" test "$CODE:$NEXT" = "200:"
sleep 3.1
poll d1 $U Idle
check "  until idle_cache_ms has passed: then the command is sent" test "$CODE:$NEXT" = "200:IDLE-RAW-1"
poll d1 $U Acknowledged IDLE-RAW-1
poll d1 $U Idle
R hset mdm:cmd:IDLE-RAW-3 plist "${body//RAW-1/RAW-3}" request_type ProfileList >/dev/null
R rpush "mdm:q:{$U}" IDLE-RAW-3 >/dev/null
R publish mdm:poke '*' >/dev/null
poll d1 $U Idle
check "  PUBLISH mdm:poke '*' after such a write: every device asks again" test "$CODE:$NEXT" = "200:IDLE-RAW-3"
poll d1 $U Acknowledged IDLE-RAW-3

# The subscriber lost: nothing is answered from memory until it is back,
# and what was learnt before is gone.
poll d1 $U Idle
poll d1 $U Idle
R hset mdm:cmd:IDLE-RAW-2 plist "${body//RAW-1/RAW-2}" request_type ProfileList >/dev/null
R client kill type pubsub >/dev/null
R rpush "mdm:q:{$U}" IDLE-RAW-2 >/dev/null
poll d1 $U Idle
check "subscriber killed: the next poll asks Redis (gets what was queued meanwhile)" \
    test "$CODE:$NEXT" = "200:IDLE-RAW-2"
poll d1 $U Acknowledged IDLE-RAW-2
check "  mdmd subscribes again" wait_for 5 subscribed
check "  and logs the outage" grep -q "event=idle_cache_off" "$T/mdmd.log"

# The certificate revoked (a new Authenticate with another certificate
# replaces it): the old one is refused at once.
poll d1 $U Idle
poll d1 $U Idle
n1=$(seen_calls Idle)
make_client_cert d2 "$CA" "$D/var/ca/ca.key" $U
plist_msg "$T/d2.auth" MessageType Authenticate UDID $U Topic com.apple.mgmt.test
check "re-enrollment with a new certificate" test "$(mdm_put /mdm/checkin d2 "$T/d2.auth" application/x-apple-aspen-mdm-checkin)" = 200
poll d1 $U Idle
check "  the old certificate's Idle poll: refused, not answered from memory" test "$CODE" = 403
plist_msg "$T/d2.tok" MessageType TokenUpdate UDID $U Topic com.apple.mgmt.test \
    PushMagic "MAGIC-$U" Token "<data>R+juwGLC9ynsFwPBs+GPGXHYXwC+dkRdNAgLqnAbX1E=</data>"
mdm_put /mdm/checkin d2 "$T/d2.tok" application/x-apple-aspen-mdm-checkin >/dev/null
poll d2 $U Idle
poll d2 $U Idle
check "  the new one's polls: 200" test "$CODE:$NEXT" = "200:"
# CheckOut ends it too.
plist_msg "$T/out.plist" MessageType CheckOut UDID $U Topic com.apple.mgmt.test
check "CheckOut answers 200" test "$(mdm_put /mdm/checkin d2 "$T/out.plist" application/x-apple-aspen-mdm-checkin)" = 200
poll d2 $U Idle
check "  the next Idle poll is refused" test "$CODE" = 403

# A user channel is always asked for.
U2=SIM-IDLE-2
enroll_device d3 $U2 >/dev/null
plist_msg "$T/u.poll" UDID $U2 Status Idle UserID 11111111-2222-3333-4444-555555555555
for i in 1 2 3; do mdm_put /mdm/connect d3 "$T/u.poll" >/dev/null; done
check "a user channel's polls all reach Redis" \
    test "$(grep -c "\"$U2:11111111-2222-3333-4444-555555555555\".*\"Idle\"" "$T/monitor")" = 3

# Redis stopped (no disconnect for the subscriber to see): once the store
# has found out (an op timed out), nothing is answered from memory.
poll d3 $U2 Idle; poll d3 $U2 Idle
kill -STOP "$REDIS_PID"
api GET "/v1/devices/$U2" >/dev/null & # an op that times out
wait_for 5 grep -q "event=redis_disconnected" "$T/mdmd.log"
poll d3 $U2 Idle
c1=$CODE
kill -CONT "$REDIS_PID"
check "Redis stopped: once the store knows, a learnt device's poll is 503, not from memory" test "$c1" = 503
back() { poll d3 $U2 Idle; [ "$CODE" = 200 ]; }
check "  Redis back: 200 again" wait_for 5 back

# idle_cache_ms 0: every poll asks Redis.  The same CA, so that a command
# handed out by the first mdmd can be reported to this one (which has not
# cached its request_type: connect.lua reads it).
api POST /v1/commands '{"udids":["'$U2'"],"command":{"RequestType":"CertificateList"}}' >/dev/null
C3=$(jget "$T/api" command_uuid)
poll d3 $U2 Idle
c3=$NEXT
kill "$MDMD_PID"; wait "$MDMD_PID" 2>/dev/null
D=$T/b
mkdir -p "$D/var" && cp -r "$T/a/var/ca" "$D/var/ca"
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "idle_cache_ms 0"
start_mdmd "$D" || { fail "mdmd (idle_cache_ms 0) starts"; finish; }
poll d3 $U2 Acknowledged "$C3"
rt_of_last() { R xrevrange "mdm:res:{$1}" + - count 1 | grep -a -A1 -x request_type | tail -n 1; }
check "a command reported to another mdmd than the one that sent it: its request_type in history" \
    test "$c3:$CODE:$(rt_of_last $U2)" = "$C3:200:CertificateList"
U3=SIM-IDLE-3
enroll_device d4 $U3 >/dev/null
for i in 1 2 3 4 5; do poll d4 $U3 Idle; done
check "idle_cache_ms 0: five polls, five calls" test "$(grep -c "\"$U3\".*\"Idle\"" "$T/monitor")" = 5
check "  and no cache in /metrics" test -z "$(metric mdmd_idle_cache_on)"
finish
