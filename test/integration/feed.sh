#!/usr/bin/env bash
# The live activity feed (issue 19): GET /v1/events streams the event stream
# as Server-Sent Events.  A reader sees events as they happen; one that comes
# back with Last-Event-ID gets exactly what it missed; heartbeats; a bounded
# number of streams; a slow reader is dropped while the loop keeps serving;
# SIGTERM ends every stream and mdmd exits within its drain.
. "$(dirname "$0")/lib.sh"

start_redis || { fail "redis starts"; finish; }
D=$T/a
write_conf "$D" "redis 127.0.0.1:$REDIS_PORT" "feed_poll_ms 100" "feed_heartbeat_s 1" \
    "feed_max_streams 3" "feed_stream_buffer 65536" "request_timeout_s 2"
start_mdmd "$D" || { fail "mdmd starts"; finish; }
KEY=$D/var/api.key
sse() { # OUT [args]: a reader in the background; sets SSE_PID
    python3 "$TOP/test/tools/sseread.py" --port "$PUB" --cacert "$CA" --key-file "$KEY" \
        --out "$1" "${@:2}" >>"$T/sseread.log" 2>&1 &
    SSE_PID=$!; PIDS+=("$SSE_PID")
}
# Each event in its device's bucket of mdm:events (the cluster layout: the
# feed merges the 64 streams by id).
ev() { R xadd "$(bkey mdm:events "DEV-$1")" '*' type test udid "DEV-$1" seq "$1" time "$(date +%s%3N)" | tr -d '\n'; }
seen() { awk -v s="\"seq\":\"$2\"" 'index($0, s)' "$1" | grep -q .; }

check "no key: 401" test "$(http_code "https://127.0.0.1:$PUB/v1/events" --cacert "$CA")" = 401
check "a malformed Last-Event-ID: 400" test "$(http_code "https://127.0.0.1:$PUB/v1/events" --cacert "$CA" \
    -H "Authorization: Bearer $(cat "$KEY")" -H 'Last-Event-ID: 1-2;x')" = 400
check "backlog over 200: 400" test "$(http_code "https://127.0.0.1:$PUB/v1/events?backlog=201" --cacert "$CA" \
    -H "Authorization: Bearer $(cat "$KEY")")" = 400

OLD=$(ev 0)
sse "$T/a.out"; A=$SSE_PID
check "the stream opens: 200 text/event-stream" wait_for 10 grep -q '^STATUS 200' "$T/a.out"
check "a new reader starts at the newest event (not the old one)" bash -c "sleep 0.3; ! grep -q '\"seq\":\"0\"' '$T/a.out'"
ID1=$(ev 1)
check "an event appears while the stream is open" wait_for 5 seen "$T/a.out" 1
check "with its stream id as the SSE id" grep -q "^[0-9]* $ID1 message " "$T/a.out"
lat=$(awk -v s='"seq":"1"' 'index($0, s) { match($0, /"time":"[0-9]+"/); t = substr($0, RSTART + 8, RLENGTH - 9); print $1 - t; exit }' "$T/a.out")
echo "     (latency, xadd to the reader: ${lat} ms at feed_poll_ms 100)"
check "within feed_poll_ms and a round trip (< 1 s)" test "$lat" -lt 1000
check "the stream outlives request_timeout_s (2 s) and gets heartbeats" wait_for 5 bash -c \
    "[ \$(grep -c '^PING' '$T/a.out') -ge 3 ]"
check "...and is still open" kill -0 "$A"

# Real events: an enrollment.
enroll_device d1 F-1
check "an enrollment reaches the feed" wait_for 5 grep -q '"udid":"F-1"' "$T/a.out"

# Resume: the reader goes away after seq 2, three events happen, it comes back.
ID2=$(ev 2)
wait_for 5 seen "$T/a.out" 2
kill "$A"; wait "$A" 2>/dev/null
ev 3 >/dev/null; ev 4 >/dev/null; ev 5 >/dev/null
sse "$T/b.out" --last-id "$ID2"; B=$SSE_PID
check "Last-Event-ID: what was missed arrives" wait_for 5 seen "$T/b.out" 5
check "...exactly 3, 4, 5, in order, nothing again" test \
    "$(grep -o '"seq":"[0-9]*"' "$T/b.out" | tr -d '"seq:' | tr '\n' ' ')" = "3 4 5 "
check "?backlog=2: the two newest first" bash -c "python3 '$TOP/test/tools/sseread.py' --port $PUB --cacert '$CA' \
    --key-file '$KEY' --path '/v1/events?backlog=2' --out '$T/c.out' & p=\$!; \
    for i in \$(seq 100); do grep -q '\"seq\":\"5\"' '$T/c.out' 2>/dev/null && break; sleep 0.05; done; kill \$p; \
    [ \"\$(grep -o '\"seq\":\"[0-9]*\"' '$T/c.out' | tr -d '\"seq:' | tr '\n' ' ')\" = '4 5 ' ]"
if layout_cluster; then # every bucket trimmed: those with events after ID1 record it
    for k in $(bkeys mdm:events); do R xtrim "$k" MAXLEN 0; done >/dev/null
else
    R xtrim mdm:events MAXLEN 1 >/dev/null
fi
sse "$T/g.out" --last-id "$ID1"; G=$SSE_PID
check "Last-Event-ID of a trimmed event: a gap event first" wait_for 5 grep -q '^[0-9]* - gap ' "$T/g.out"
kill "$G"; wait "$G" 2>/dev/null

# A slow reader: it never reads; 600 events of 1 KB go out.
sse "$T/slow.out" --slow; S=$SSE_PID
wait_for 5 grep -q '^STATUS 200' "$T/slow.out"
sse "$T/d.out"; E=$SSE_PID
wait_for 5 grep -q '^STATUS 200' "$T/d.out"
check "a fourth stream: 503 (feed_max_streams 3)" test "$(http_code "https://127.0.0.1:$PUB/v1/events" \
    --cacert "$CA" -H "Authorization: Bearer $(cat "$KEY")")" = 503
BLOB=$(head -c 700 /dev/urandom | base64 -w0)
for i in $(seq 100 699); do echo "XADD $(bkey mdm:events "BULK-$i") * type bulk seq $i blob $BLOB"; done | R >/dev/null
check "the slow reader is dropped" wait_for 20 grep -q 'event=stream_dropped listener=public .* reason=slow_reader' "$T/mdmd.log"
buf=$(grep -o 'event=stream_dropped.*' "$T/mdmd.log" | head -1 | sed 's/.*buffered=\([0-9]*\).*/\1/')
echo "     (dropped with $buf bytes unsent, feed_stream_buffer 65536)"
check "...before its output passed the bound and one batch (200 events)" test "$buf" -lt $((65536 + 200 * 1200))
check "the reader that keeps up got all 600" wait_for 20 seen "$T/d.out" 699
check "...each once" test "$(grep -c '"type":"bulk"' "$T/d.out")" = 600
t0=$(date +%s%3N); code=$(http_code "https://127.0.0.1:$PUB/healthz" --cacert "$CA"); t1=$(date +%s%3N)
check "/healthz answers meanwhile ($((t1 - t0)) ms)" test "$code" = 200
curl -s --cacert "$CA" -H "Authorization: Bearer $(cat "$KEY")" "https://127.0.0.1:$PUB/metrics" >"$T/metrics"
m() { awk -v k="$1" '$1 == k { print $2 }' "$T/metrics"; }
check "metrics: 1 dropped, 2 open" bash -c "[ '$(m mdmd_event_streams_dropped_total)' = 1 ] && [ '$(m mdmd_event_streams)' = 2 ]"
check "metrics: 1 refused" test "$(m mdmd_event_streams_refused_total)" = 1
check "a stream can open again after the drop" bash -c "[ \$(grep -c 'STATUS' '$T/slow.out') = 1 ]"

# SIGTERM with two streams open: they end cleanly and mdmd exits in time.
t0=$(date +%s%3N)
kill -TERM "$MDMD_PID"; wait "$MDMD_PID"; rc=$?; t1=$(date +%s%3N)
check "SIGTERM: mdmd exits 0 ($((t1 - t0)) ms)" test "$rc" = 0
check "...without waiting for the streams (no shutdown_timeout)" bash -c "! grep -q shutdown_timeout '$T/mdmd.log'"
check "the readers saw the end of the stream" wait_for 5 bash -c "grep -q '^END' '$T/b.out' && grep -q '^END' '$T/d.out'"
check "no sanitizer report" bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/mdmd.log'"
finish
