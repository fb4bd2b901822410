#!/usr/bin/env bash
# mdmctl against a real mdmd: settings from flags, environment, a config file
# and ./var; every subcommand in table and --json form; JSON and plist
# enqueues (a long plist target list goes out in batches under one UUID);
# bulk jobs followed with the progress bar; errors and exit codes.
. "$(dirname "$0")/lib.sh"
# ready: mdmd answers /healthz with Redis up (the ports file comes earlier).
ready() { wait_for 20 out_is 200 http_code "https://127.0.0.1:$PUB/healthz" --cacert "$CA"; }

start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "enroll_require_issued no"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
ready || fail "mdmd is ready"
U1=CLI-0001; U2=CLI-0002
enroll_device c1 $U1 && enroll_device c2 $U2 || fail "devices enroll"
KEY=$(cat "$D/var/api.key")
export MDMCTL_URL="https://127.0.0.1:$PUB" MDMCTL_KEY="$KEY" MDMCTL_CACERT="$CA"
export HOME=$T/home XDG_CONFIG_HOME=   # no personal config file gets in the way
C() { "$BIN/mdmctl" "$@" >"$T/out" 2>"$T/err"; local rc=$?; cat "$T/err" >>"$T/mdmctl.err"; return $rc; }
has() { grep -q -- "$1" "$T/${2:-out}"; }

check "--version prints the build's version" bash -c "[ \"\$('$BIN/mdmctl' --version)\" = \"mdmctl \$('$BIN/mdmd' --version | cut -d' ' -f2)\" ]"
C frobnicate; check "unknown command: exit 2" test $? = 2
env -u MDMCTL_KEY bash -c "cd '$T' && '$BIN/mdmctl' devices" >/dev/null 2>"$T/err"
check "no key anywhere: exit 2 and says how" bash -c "[ $? = 2 ] && grep -q 'no API key' '$T/err'"
env -u MDMCTL_CACERT bash -c "cd '$T' && '$BIN/mdmctl' devices" >/dev/null 2>"$T/err"
check "untrusted server certificate: refused, says --cacert" bash -c "[ $? = 1 ] && grep -q -- '--cacert' '$T/err'"
C --url "https://localhost:$PUB" devices
check "the name localhost verifies too" has $U1

# --- devices, device ---
C devices
check "devices: a table with both devices" bash -c "grep -q '^UDID *STATE' '$T/out' && grep -q '^$U1 *enrolled *SN-$U1' '$T/out' && grep -q $U2 '$T/out'"
check "devices: a count line" has "2 shown, 2 known"
C devices --limit 1 --state enrolled
check "devices --limit 1: one row and where to go on" bash -c "[ \$(grep -c '^CLI-' '$T/out') = 1 ] && grep -q 'more with --offset 1' '$T/out'"
C --json devices
check "--json devices: the server's JSON" bash -c "grep -q '\"devices\"' '$T/out' && grep -q '\"total\": 2' '$T/out'"
C device $U1
check "device: the record, times readable, the queue" bash -c "grep -q '^state *enrolled' '$T/out' && grep -q '^enrolled_at *20[0-9-]* [0-9:]* UTC' '$T/out' && grep -q '^queue *0' '$T/out'"
C device NOPE-1; rc=$?
check "unknown device: exit 1 with the server's reason" bash -c "[ $rc = 1 ] && grep -q 'mdmctl: 404 unknown device' '$T/err'"

# --- enqueue (JSON), history ---
C enqueue --udid $U1 --udid GHOST-1 --json '{"RequestType":"DeviceInformation","Queries":["DeviceName"]}'
C1=$(awk '/^command/ { print $2 }' "$T/out")
check "enqueue --json: queued for 1, the ghost named" bash -c "grep -q 'queued for 1 devices' '$T/out' && grep -q GHOST-1 '$T/err'"
C device $U1
check "the device's queue has it" bash -c "grep -q '^queue *1' '$T/out' && grep -q '  $C1' '$T/out'"
C enqueue --udid $U1 --json '{"Queries":[]}'
check "a command without RequestType: usage error" test $? = 2
poll c1 $U1 Idle
poll c1 $U1 Acknowledged "$C1" QueryResponses "<dict><key>DeviceName</key><string>x</string></dict>"
C history $U1
check "history: the acknowledged command" bash -c "grep -q 'Acknowledged *DeviceInformation *$C1' '$T/out'"
C --json history $U1 --count 1
check "--json history" has '"commands"'

# --- enqueue (plist) ---
printf '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>RequestType</key><string>ProfileList</string></dict></plist>\n' >"$T/cmd.plist"
C enqueue --udid $U1 --udid $U2 --plist "$T/cmd.plist"
C2=$(awk '/^command/ { print $2 }' "$T/out")
check "enqueue --plist: a bare command dictionary is wrapped and queued for 2" bash -c "grep -q 'queued for 2 devices' '$T/out' && [ \"\$(redis-cli -p $REDIS_PORT lindex 'mdm:q:{$U2}' 0)\" = '$C2' ]"
for i in $(seq 1 600); do printf 'GHOST-%04d\n' "$i"; done >"$T/many"; echo $U2 >>"$T/many"
C enqueue --udids-file "$T/many" --plist "$T/cmd.plist"
C3=$(awk '/^command/ { print $2 }' "$T/out")
check "601 targets by plist: batched, one UUID, 1 queued" bash -c "grep -q 'queued for 1 devices' '$T/out' && [ \"\$(redis-cli -p $REDIS_PORT lrange 'mdm:q:{$U2}' 0 -1 | grep -c '$C3')\" = 1 ]"
check "  and it took several requests" bash -c "[ \$(grep -c 'command_queued uuid=$C3' '$T/mdmd.log') -ge 2 ]"
check "  the 600 ghosts are reported" test "$(grep -c GHOST- "$T/err")" = 600

# --- queue-clear, push ---
C queue-clear $U2
check "queue-clear: dropped 2" has "dropped 2 queued commands of $U2"
C push $U1 NOPE-2; cp "$T/out" "$T/push.out"; cp "$T/err" "$T/push.err"
check "push: one of two can be woken" has "pushing 1 of 2 devices"

# --- bulk jobs with progress ---
C --progress enqueue --all-enrolled --json '{"RequestType":"SecurityInfo"}'
check "--all-enrolled: job followed to the end" bash -c "grep -q '^job [0-9a-f]\{32\} done: command .* queued for 2 devices' '$T/out'"
check "  with a progress bar on stderr" bash -c "grep -q '\[#*\.*\] 100% 2/2 queued 2' '$T/err'"
C enqueue --all-enrolled --no-wait --json '{"RequestType":"SecurityInfo"}'
J=$(awk '/^job/ { print $2 }' "$T/out")
check "--no-wait: the job id, and how to follow it" has "mdmctl job $J --wait"
C job "$J" --wait
check "job --wait: done" has "^job $J done"
C --json job "$J"
check "--json job" has '"state": "done"'
for i in $(seq 1 5999); do printf 'NOBODY-%05d\n' "$i"; done >"$T/big"; echo $U1 >>"$T/big"
C --progress enqueue --udids-file "$T/big" --json '{"RequestType":"SecurityInfo"}'
check "6000 UDIDs: a job, 1 queued, 5999 unknown" bash -c "grep -q 'queued for 1 devices, 5999 unknown' '$T/out'"
C enqueue --all-enrolled --plist "$T/cmd.plist"
check "--all-enrolled with --plist: a job too" has "queued for 2 devices"

# --- users, profiles, apps ---
api POST /v1/users '{"username":"kim","password":"correct horse","role":"admin"}' >/dev/null
C users
check "users: a table" bash -c "grep -q '^USERNAME *ROLE' '$T/out' && grep -q '^kim *admin' '$T/out'"
C profiles
check "profiles: none yet" has "no profiles"
C --json apps
check "--json apps" has '"apps"'

# --- config file and ./var ---
mkdir -p "$T/home/.config"
printf 'url https://127.0.0.1:%s\nkey_file %s\ncacert %s\n' "$PUB" "$D/var/api.key" "$CA" >"$T/home/.config/mdmctl.conf"
env -u MDMCTL_URL -u MDMCTL_KEY -u MDMCTL_CACERT "$BIN/mdmctl" devices >"$T/out" 2>"$T/err"
check "settings from ~/.config/mdmctl.conf" has $U1
printf 'url https://127.0.0.1:1\n' >"$T/bad.conf"
env -u MDMCTL_URL "$BIN/mdmctl" --config "$T/bad.conf" devices >/dev/null 2>"$T/err"
check "--config wins over ~/.config; a refused connection: exit 1" bash -c "[ $? = 1 ] && grep -q 'cannot connect' '$T/err'"
MDMCTL_URL="https://127.0.0.1:1" "$BIN/mdmctl" --url "https://127.0.0.1:$PUB" devices >"$T/out" 2>&1
check "a flag wins over the environment" has $U1
rm "$T/home/.config/mdmctl.conf"
(cd "$D" && env -u MDMCTL_KEY -u MDMCTL_CACERT "$BIN/mdmctl" devices) >"$T/out" 2>"$T/err"
check "next to mdmd's data dir: var/api.key and var/ca/ca.crt are used" has $U1

kill -TERM "$MDMD_PID"; wait "$MDMD_PID"; rc=$?
check "SIGTERM exits 0" test "$rc" = 0
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log' '$T/mdmctl.err'"
finish
