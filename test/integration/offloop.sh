#!/usr/bin/env bash
# Large bodies and large reads stay off the loop: a 5 MB raw command plist
# (POST /v1/commands), a 250 KB CMS-signed OTA reply, a device record with
# a 3 MB string (GET /v1/devices/<udid>) and a 30 MB command history (GET
# .../commands, paged by history_page_bytes) are parsed, verified and
# converted on the crypto worker or bounded per page, while /healthz is
# probed every 20 ms on a keep-alive connection: every probe within 100 ms.
# Also: a refused command's reason reaches the log sanitised.
. "$(dirname "$0")/lib.sh"

start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
LOG=$T/mdmd.log
KEY=$(cat "$D/var/api.key")
U=OFFLOOP-DEV-1
enroll_device dev "$U" || fail "device enrolls"

# The inputs, made before the probe starts.
python3 - "$T" <<'PY'
import sys
t = sys.argv[1]
pad = "n" * 250
items = "".join("<dict><key>Item</key><string>DeviceName</string><key>DeviceName</key>"
                "<string>%s%d</string></dict>" % (pad, i) for i in range(16000))
open(t + "/bigcmd", "w").write(
    '<?xml version="1.0"?><plist version="1.0"><dict><key>Command</key><dict>'
    "<key>RequestType</key><string>Settings</string><key>Settings</key><array>" + items +
    "</array></dict></dict></plist>")
ota = ("<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>UDID</key><string>X</string>"
       + "".join("<key>K%d</key><string>%s</string>" % (i, "v" * 1000) for i in range(240))
       + "</dict></plist>")
open(t + "/bigota", "w").write(ota)
res = ('<?xml version="1.0"?><plist version="1.0"><dict><key>L</key><array>'
       + "<string>%s</string>" % ("x" * 3000) * 1000 + "</array></dict></plist>")
open(t + "/bigres", "w").write(res)
PY
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=signer" \
    -keyout "$T/s.key" -out "$T/s.crt" -days 2 2>/dev/null
openssl cms -sign -binary -nodetach -outform DER -in "$T/bigota" -signer "$T/s.crt" \
    -inkey "$T/s.key" -out "$T/bigota.p7" 2>/dev/null
for i in $(seq 1 10); do
    R -x xadd "mdm:res:{$U}" '*' uuid "big-$i" request_type InstalledApplicationList \
        status Acknowledged time 1 queued 1 error_chain '' result <"$T/bigres" >/dev/null
done
head -c 3000000 /dev/zero | tr '\0' 'd' | R -x hset "mdm:dev:{$U}" big_field >/dev/null

sends() { # NAME EXPECT CURL-ARGS...
    local name=$1 want=$2; shift 2
    echo "$(date -u +%T.%3N) $name" >>"$T/steps"
    local got
    got=$(curl -s -o "$T/out" -w '%{http_code}' --max-time 60 --cacert "$CA" "$@")
    if [ "$got" = "$want" ]; then ok "$name: $want"; else fail "$name" "got $got, want $want"; fi
}
auth=(-H "Authorization: Bearer $KEY")

# heavy N: the large requests once (their checks named "... (N)"), with the probe running.
heavy() {
    local r=$1
    rm -f "$T/stop" "$T/steps"
    python3 "$TOP/test/tools/healthz_probe.py" "$PUB" "$T/stop" "$CA" >"$T/probe.out" 2>&1 &
    local probe=$!
    python3 "$TOP/test/tools/healthz_probe.py" "$PUB" "$T/stop" "$CA" /loop-probe >"$T/probe404.out" 2>&1 &
    local probe404=$!
    PIDS+=($probe $probe404)
    sleep 0.3 # a few probes before
    local q0 q1
    q0=$(R llen "mdm:q:{$U}")
    sends "raw command plist of $(($(wc -c <"$T/bigcmd") / 1000000)) MB (80,000 nodes) ($r)" 201 \
        "${auth[@]}" -H 'Content-Type: application/x-apple-plist' --data-binary "@$T/bigcmd" \
        "https://127.0.0.1:$PUB/v1/commands?udids=$U"
    q1=$(R llen "mdm:q:{$U}")
    check "queued once ($r)" test "$((q1 - q0))" = 1
    sends "OTA reply of $(($(wc -c <"$T/bigota.p7") / 1000)) KB, CMS-signed: over the attributes' budget ($r)" 400 \
        -H 'Content-Type: application/pkcs7-signature' --data-binary "@$T/bigota.p7" \
        "https://127.0.0.1:$PUB/enroll/ota"
    sends "device with a 3 MB field ($r)" 200 "${auth[@]}" "https://127.0.0.1:$PUB/v1/devices/$U"
    check "the 3 MB field is in the answer ($r)" test "$(wc -c <"$T/out")" -gt 3000000
    # The history: 10 results of 3 MB; pages of at most history_page_bytes
    # (4 MB) each, so one result a page, every page but the last saying so.
    local before="" seen=0 pages=0 truncated=0 n
    while [ $pages -lt 20 ]; do
        sends "history page $((pages + 1)) ($r)" 200 "${auth[@]}" \
            "https://127.0.0.1:$PUB/v1/devices/$U/commands?count=50${before:+&before=$before}"
        pages=$((pages + 1))
        n=$(grep -o '"uuid":"big-[0-9]*"' "$T/out" | wc -l)
        seen=$((seen + n))
        grep -q '"truncated":true' "$T/out" || break
        truncated=$((truncated + 1))
        before=$(jget "$T/out" next_before)
    done
    check "history: 10 results in 10 pages of one (seen $seen in $pages pages) ($r)" test "$seen:$pages" = 10:10
    check "history: the first 9 pages say truncated ($truncated) ($r)" test "$truncated" = 9
    check "history: the last page holds one result ($r)" test "$(wc -c <"$T/out")" -lt 8000000
    touch "$T/stop"; wait "$probe" "$probe404"
    echo "# loop-only probe (a 404, no Redis) during run $r: $(tail -n 1 "$T/probe404.out")"
    read -r probes worst errs < <(tail -n 1 "$T/probe.out" | sed -E 's/[a-z_]+=//g')
    echo "# healthz during run $r: $(tail -n 1 "$T/probe.out")"
    if grep '^slow' "$T/probe.out"; then sed 's/^/# sent /' "$T/steps"; fi
    check "/healthz answered throughout (${probes} probes, no errors) ($r)" test "${errs:-1}" = 0 -a "${probes:-0}" -gt 10
    loop_worst=$(tail -n 1 "$T/probe404.out" | sed -E 's/.*worst_ms=([0-9.]+).*/\1/')
}

# A loop held by one request is held every time; a probe starved by other
# work on a loaded machine (make test beside other test runs) rarely twice
# running: the timing counts only when a second run is slow too.
heavy 1
if ! python3 -c "import sys; sys.exit(not float('$worst') < 100)"; then
    echo "# run 1: worst ${worst} ms; once more"
    first=$worst
    heavy 2
    worst="$worst (run 1: $first)"
fi
check "/healthz always within 100 ms (worst ${worst} ms)" python3 -c "import sys; sys.exit(not float('${worst%% *}') < 100)"
# The same without Redis in the answer (/healthz waits for a PING behind the
# large command's script): what the loop itself does.
check "a 404 (loop only) always within 100 ms (worst ${loop_worst} ms, last run)" \
    python3 -c "import sys; sys.exit(not float('${loop_worst:-1000}') < 100)"

# A refused command's reason quotes its RequestType: it reaches the log sanitised.
printf '%s' '<?xml version="1.0"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>Evil"&#10;level=error event=forged</string></dict></dict></plist>' >"$T/evil"
sends "raw command with a forged log line for a RequestType" 400 "${auth[@]}" \
    -H 'Content-Type: application/x-apple-plist' --data-binary "@$T/evil" \
    "https://127.0.0.1:$PUB/v1/commands?udids=$U"
check "the refusal's log line forges no line of its own" bash -c "! grep -q '^level=error event=forged' '$LOG' &&
    grep -q 'event=command_refused reason=.*Evil' '$LOG'"
check "the OTA refusal names the limit" grep -q 'path=/enroll/ota status=400 reason="signed content: plist nodes over' "$LOG"
check "mdmd is still running" kill -0 "$MDMD_PID"
finish
