#!/usr/bin/env bash
# Large bodies and large reads stay off the loop: a 9 MB raw command plist
# (POST /v1/commands), a 250 KB CMS-signed OTA reply, a device record with
# an 8 MB string (GET /v1/devices/<udid>) and a 30 MB command history (GET
# .../commands, paged by history_page_bytes) are parsed, verified and
# converted on the crypto worker or bounded per page, while /healthz is
# probed every 20 ms on a keep-alive connection: every probe within 100 ms.
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
                "<string>%s%d</string></dict>" % (pad, i) for i in range(28000))
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
head -c 8000000 /dev/zero | tr '\0' 'd' | R -x hset "mdm:dev:{$U}" big_field >/dev/null

python3 "$TOP/test/tools/healthz_probe.py" "$PUB" "$T/stop" "$CA" >"$T/probe.out" 2>&1 &
PROBE=$!
PIDS+=($PROBE)

sends() { # NAME EXPECT CURL-ARGS...
    local name=$1 want=$2; shift 2
    echo "$(date -u +%T.%3N) $name" >>"$T/steps"
    local got
    got=$(curl -s -o "$T/out" -w '%{http_code}' --max-time 60 --cacert "$CA" "$@")
    if [ "$got" = "$want" ]; then ok "$name: $want"; else fail "$name" "got $got, want $want"; fi
}
auth=(-H "Authorization: Bearer $KEY")

sleep 0.3 # a few probes before
sends "raw command plist of $(($(wc -c <"$T/bigcmd") / 1000000)) MB (140,000 nodes)" 201 \
    "${auth[@]}" -H 'Content-Type: application/x-apple-plist' --data-binary "@$T/bigcmd" \
    "https://127.0.0.1:$PUB/v1/commands?udids=$U"
check "queued once" test "$(R llen "mdm:q:{$U}")" = 1
sends "OTA reply of $(($(wc -c <"$T/bigota.p7") / 1000)) KB, CMS-signed: over the attributes' budget" 400 \
    -H 'Content-Type: application/pkcs7-signature' --data-binary "@$T/bigota.p7" \
    "https://127.0.0.1:$PUB/enroll/ota"
check "the OTA refusal names the limit" grep -q 'path=/enroll/ota status=400 reason="signed content: plist nodes over' "$LOG"
sends "device with an 8 MB field" 200 "${auth[@]}" "https://127.0.0.1:$PUB/v1/devices/$U"
check "the 8 MB field is in the answer" test "$(wc -c <"$T/out")" -gt 8000000

# The history: 10 results of 3 MB; pages of at most history_page_bytes (4 MB)
# each, so one result a page, every page saying so, all 10 reached.
before="" seen=0 pages=0 truncated=0
while [ $pages -lt 20 ]; do
    sends "history page $((pages + 1))" 200 "${auth[@]}" \
        "https://127.0.0.1:$PUB/v1/devices/$U/commands?count=50${before:+&before=$before}"
    pages=$((pages + 1))
    n=$(grep -o '"uuid":"big-[0-9]*"' "$T/out" | wc -l)
    seen=$((seen + n))
    grep -q '"truncated":true' "$T/out" && truncated=$((truncated + 1))
    grep -q '"truncated":true' "$T/out" || break
    before=$(jget "$T/out" next_before)
done
check "history: 10 results in 10 pages of one (seen $seen in $pages pages)" test "$seen:$pages" = 10:10
check "history: the first 9 pages say truncated ($truncated)" test "$truncated" = 9
check "history: page bytes bounded (the last page holds one result)" \
    test "$(wc -c <"$T/out")" -lt 8000000

touch "$T/stop"; wait "$PROBE"
read -r probes worst errs < <(tail -n 1 "$T/probe.out" | sed -E 's/[a-z_]+=//g')
echo "# healthz during the run: $(tail -n 1 "$T/probe.out")"
if grep '^slow' "$T/probe.out"; then sed 's/^/# sent /' "$T/steps"; fi
check "mdmd is still running" kill -0 "$MDMD_PID"
check "/healthz answered throughout (${probes} probes, no errors)" test "${errs:-1}" = 0 -a "${probes:-0}" -gt 10
check "/healthz always within 100 ms (worst ${worst} ms)" python3 -c "import sys; sys.exit(not float('$worst') < 100)"
finish
