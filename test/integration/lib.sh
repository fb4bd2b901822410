# lib.sh: shared by the integration scripts (bash).  Real processes only:
# redis-server on a free loopback port, mdmd with a generated config in a
# temp dir, curl/openssl as the TLS clients.  No fixed sleeps: every wait
# polls for readiness with a deadline.  KEEP=1 keeps the temp dir.
set -u
BIN=${BIN:-bin}
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
case "$BIN" in /*) ;; *) BIN="$TOP/$BIN" ;; esac
T=$(mktemp -d /tmp/mdmd-it.XXXXXX)
PASSED=0; FAILED=0
PIDS=()
# A 32 MB quarantine (not 256): PBKDF2-600k mallocs and frees per round in
# OpenSSL, and pushing that through the default quarantine made every password
# hash 4-16 times slower; 32 MB of recent frees still catch use-after-free.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:quarantine_size_mb=32}

cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    if [ "$FAILED" != 0 ] || [ "${KEEP:-0}" = 1 ]; then
        for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }; done
        echo "kept $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

ok()   { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1${2:+: $2}"; }
# check NAME COMMAND...: passes when the command exits 0.
check() { local n=$1; shift; if "$@"; then ok "$n"; else fail "$n"; fi; }
finish() { echo "$PASSED passed, $FAILED failed"; [ "$FAILED" = 0 ]; exit $?; }

# wait_for SECONDS COMMAND...: polls every 20 ms until the command succeeds.
wait_for() {
    local limit=$(( $(date +%s%N) / 1000000 + $1 * 1000 )); shift
    until "$@" >/dev/null 2>&1; do
        [ $(( $(date +%s%N) / 1000000 )) -ge $limit ] && return 1
        sleep 0.02
    done
}

# out_is WANT COMMAND...: the command's output is WANT (use with wait_for, which
# runs it again on every try).
out_is() { [ "$("${@:2}")" = "$1" ]; }

free_port() { "$BIN/freeport"; }

# CLUSTER_SEEDS (host:port,...: a running Redis Cluster, test/integration/
# cluster.sh) runs a suite on that cluster: start_redis starts no Redis, it
# empties every master and points REDIS_PORT at the first seed, and redis-cli
# follows MOVED (-c) so that the suite's own reads find their keys.
if [ -n "${CLUSTER_SEEDS:-}" ]; then
    mkdir -p "$T/clibin"
    printf '#!/bin/sh\nexec %s -c "$@"\n' "$(command -v redis-cli)" >"$T/clibin/redis-cli"
    chmod +x "$T/clibin/redis-cli"
    PATH="$T/clibin:$PATH"
fi

# start_redis: sets REDIS_PORT and REDIS_PID.
start_redis() {
    if [ -n "${CLUSTER_SEEDS:-}" ]; then
        local s
        REDIS_PORT=${CLUSTER_SEEDS%%,*}; REDIS_PORT=${REDIS_PORT##*:}; REDIS_PID=
        for s in ${CLUSTER_SEEDS//,/ }; do
            redis-cli -p "${s##*:}" role | head -n 1 | grep -q '^master$' &&
                redis-cli -p "${s##*:}" flushall >/dev/null
        done
        return 0
    fi
    REDIS_PORT=${1:-$(free_port)}
    mkdir -p "$T/redis"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$T/redis" --daemonize no >"$T/redis.log" 2>&1 &
    REDIS_PID=$!; PIDS+=("$REDIS_PID")
    wait_for 5 redis-cli -p "$REDIS_PORT" ping
}
stop_redis() { kill -9 "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; }

# write_conf DIR [extra lines]: an mdmd config on free ports under DIR.
write_conf() {
    local d=$1; shift
    mkdir -p "$d"
    {
        echo "listen 127.0.0.1:0"
        echo "mdm_listen 127.0.0.1:0"
        echo "port_file $d/ports"
        echo "data_dir $d/var"
        echo "server_names localhost 127.0.0.1 ::1"
        echo "ca_key_type ec256"
        echo "shutdown_timeout_s 5"
        # Provisioning at the first TokenUpdate queues commands; the protocol
        # tests expect an empty queue after enroll_device, so it is off unless
        # a test passes "provision_on_enroll yes" (users.sh does).
        echo "provision_on_enroll no"
        # The scripts make client certificates with openssl straight from the
        # CA; enroll.sh turns this back on to test the issued-only rule.
        echo "enroll_require_issued no"
        # REDIS_LAYOUT=cluster runs a suite in the cluster key layout (on its
        # single Redis, or on the cluster of CLUSTER_SEEDS).
        [ -n "${REDIS_LAYOUT:-}" ] && echo "redis_layout $REDIS_LAYOUT"
        for l in "$@"; do echo "$l"; done
    } >"$d/mdmd.conf"
}

# The key layout's names (docs/REDIS.md, "Redis Cluster"), for checks that
# read Redis: in the cluster layout (REDIS_LAYOUT=cluster, or CLUSTER_SEEDS
# set) a fleet-wide key is one of 64 buckets, chosen by the slot of the
# device's UDID, and the fleet's configuration is in the slot {g}.
layout_cluster() { [ "${REDIS_LAYOUT:-}" = cluster ] || [ -n "${CLUSTER_SEEDS:-}" ]; }
key_slot() { # CRC16-XMODEM of the hash tag (or the key) modulo 16384
    local k=$1 t crc=0 i j c
    t=${k#*\{}; if [ "$t" != "$k" ] && [ "${t%%\}*}" != "$t" ] && [ -n "${t%%\}*}" ]; then k=${t%%\}*}; fi
    for ((i = 0; i < ${#k}; i++)); do
        printf -v c '%d' "'${k:i:1}"
        crc=$(( crc ^ (c << 8) ))
        for ((j = 0; j < 8; j++)); do
            if (( crc & 0x8000 )); then crc=$(( ((crc << 1) ^ 0x1021) & 0xffff )); else crc=$(( (crc << 1) & 0xffff )); fi
        done
    done
    echo $(( crc % 16384 ))
}
# bkey BASE UDID: BASE (single layout) or BASE:{bNN}, NN the UDID's bucket.
bkey() { if layout_cluster; then printf '%s:{b%02d}\n' "$1" $(( $(key_slot "$2") % 64 )); else echo "$1"; fi; }
# bkeys BASE: every bucket of BASE, one a line (BASE alone in the single layout).
bkeys() { if layout_cluster; then for ((i = 0; i < 64; i++)); do printf '%s:{b%02d}\n' "$1" $i; done; else echo "$1"; fi; }
# gkey REST: mdm:REST, or mdm:{g}:REST in the cluster layout.
gkey() { if layout_cluster; then echo "mdm:{g}:$1"; else echo "mdm:$1"; fi; }

# start_mdmd DIR: runs mdmd with DIR/mdmd.conf; sets MDMD_PID, PUB, MDM, CA.
start_mdmd() {
    local d=$1
    rm -f "$d/ports"
    # From inside DIR, so that a relative data_dir (as under make run) works.
    (cd "$d" && exec "$BIN/mdmd" -c "$d/mdmd.conf") >>"$T/mdmd.log" 2>&1 &
    MDMD_PID=$!; PIDS+=("$MDMD_PID")
    wait_for 60 test -s "$d/ports" || return 1
    PUB=$(awk '$1=="listen"{print $2}' "$d/ports")
    MDM=$(awk '$1=="mdm_listen"{print $2}' "$d/ports")
    CA="$d/var/ca/ca.crt"
}

# http_code URL [curl args]: prints the status, or 000 when no HTTP answer came.
http_code() {
    local url=$1; shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "$url" 2>/dev/null
}

# make_client_cert NAME CA_CRT CA_KEY CN: a clientAuth certificate signed by CA.
make_client_cert() {
    local n=$1 cacrt=$2 cakey=$3 cn=$4
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
        -keyout "$T/$n.key" -out "$T/$n.csr" 2>/dev/null &&
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n' >"$T/$n.ext" &&
    openssl x509 -req -in "$T/$n.csr" -CA "$cacrt" -CAkey "$cakey" -CAcreateserial \
        -days 2 -extfile "$T/$n.ext" -out "$T/$n.crt" 2>/dev/null
}

# --- MDM device side (curl over mutual TLS) ---

# mdm_put PATH CERT BODYFILE [CONTENT-TYPE]: PUTs to the MDM listener with the
# client certificate $T/CERT.{crt,key}; prints the status, body in $T/resp.
mdm_put() {
    local path=$1 cert=$2 file=$3 ctype=${4:-application/x-apple-aspen-mdm}
    curl -s -o "$T/resp" -w '%{http_code}' --max-time 10 --cacert "$CA" \
        --cert "$T/$cert.crt" --key "$T/$cert.key" -X PUT -H "Content-Type: $ctype" \
        --data-binary "@$file" "https://127.0.0.1:$MDM$path"
}

# plist_msg FILE KEY VALUE...: writes an XML plist dict of string values
# (a value of the form "<tag>...</tag>" is written as it is).
plist_msg() {
    local f=$1; shift
    {
        echo '<?xml version="1.0" encoding="UTF-8"?>'
        echo '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">'
        echo '<plist version="1.0"><dict>'
        while [ $# -ge 2 ]; do
            case "$2" in
                "<"*) printf '<key>%s</key>%s\n' "$1" "$2" ;;
                *) printf '<key>%s</key><string>%s</string>\n' "$1" "$2" ;;
            esac
            shift 2
        done
        echo '</dict></plist>'
    } >"$f"
}

# api METHOD PATH [JSON]: the admin REST API with the key; prints the status,
# body in $T/api.
api() {
    local m=$1 p=$2; shift 2
    curl -s -o "$T/api" -w '%{http_code}' --max-time 10 --cacert "$CA" -X "$m" \
        -H "Authorization: Bearer $(cat "$D/var/api.key")" -H 'Content-Type: application/json' \
        ${1:+--data-binary "$1"} "https://127.0.0.1:$PUB$p"
}

# jget FILE KEY: a top-level string or number from a flat JSON object (tests only).
jget() { grep -o "\"$2\":\(\"[^\"]*\"\|[0-9-]*\)" "$1" | head -n 1 | sed -e "s/^\"$2\"://" -e 's/^"//' -e 's/"$//'; }

# enroll_device NAME UDID: a client certificate with CN=UDID, then Authenticate
# and TokenUpdate; 0 when both answered 200.
enroll_device() {
    local n=$1 u=$2
    make_client_cert "$n" "$CA" "$D/var/ca/ca.key" "$u" || return 1
    plist_msg "$T/$n.auth" MessageType Authenticate UDID "$u" Topic com.apple.mgmt.test \
        SerialNumber "SN-$u" ProductName iPhone15,2 OSVersion 17.5 DeviceName "Phone $u"
    [ "$(mdm_put /mdm/checkin "$n" "$T/$n.auth" application/x-apple-aspen-mdm-checkin)" = 200 ] || return 1
    plist_msg "$T/$n.tok" MessageType TokenUpdate UDID "$u" Topic com.apple.mgmt.test \
        PushMagic "MAGIC-$u" Token "<data>R+juwGLC9ynsFwPBs+GPGXHYXwC+dkRdNAgLqnAbX1E=</data>"
    [ "$(mdm_put /mdm/checkin "$n" "$T/$n.tok" application/x-apple-aspen-mdm-checkin)" = 200 ]
}

# poll NAME UDID STATUS [UUID [EXTRA-KEY EXTRA-VALUE...]]: one report on the
# command endpoint; sets CODE (HTTP status) and NEXT (the UUID of the command
# sent back, empty when none); the body is in $T/resp.
poll() {
    local n=$1 u=$2 st=$3 id=${4:-}; shift 3; [ $# -gt 0 ] && shift
    if [ -n "$id" ]; then
        plist_msg "$T/$n.poll" UDID "$u" Status "$st" CommandUUID "$id" "$@"
    else
        plist_msg "$T/$n.poll" UDID "$u" Status "$st" "$@"
    fi
    CODE=$(mdm_put /mdm/connect "$n" "$T/$n.poll")
    NEXT=$(grep -A1 '<key>CommandUUID</key>' "$T/resp" 2>/dev/null | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p')
}

R() { redis-cli -p "$REDIS_PORT" "$@"; }
# xrange_all BASE: the entries of stream BASE, bucket after bucket (one
# XRANGE - + per bucket; the single layout's one key).
xrange_all() { local k; for k in $(bkeys "$1"); do R xrange "$k" - +; done; }
# zcard_all BASE: the members of sorted set BASE over its buckets.
zcard_all() { local k n=0; for k in $(bkeys "$1"); do n=$((n + $(R zcard "$k"))); done; echo "$n"; }
# scan_all PATTERN: the keys matching PATTERN, on every master of the cluster
# of CLUSTER_SEEDS (SCAN is per node), or on the one Redis.
scan_all() {
    local s
    if [ -z "${CLUSTER_SEEDS:-}" ]; then R --scan --pattern "$1"; return; fi
    for s in ${CLUSTER_SEEDS//,/ }; do
        redis-cli -p "${s##*:}" role | head -n 1 | grep -q '^master$' &&
            redis-cli -p "${s##*:}" --scan --pattern "$1"
    done
}
# evgrep GREP-ARGS...: grep over the fleet's events (mdm:events, every bucket).
evgrep() { xrange_all mdm:events | grep "$@"; }
# hsum BASE FIELD: FIELD of hash BASE added up over its buckets.
hsum() { local k v n=0; for k in $(bkeys "$1"); do v=$(R hget "$k" "$2"); n=$((n + ${v:-0})); done; echo "$n"; }

# --- APNs side ---

# make_push_pki: a CA for the mock APNs server ($T/apns-ca), its server cert
# for 127.0.0.1, and an MDM push certificate with topic $TOPIC in $T/push.*.
make_push_pki() {
    TOPIC=${TOPIC:-com.apple.mgmt.External.1a2b3c4d-0000-4000-8000-00000000abcd}
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=Test APNs CA" \
        -keyout "$T/apns-ca.key" -out "$T/apns-ca.crt" -days 2 2>/dev/null &&
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$T/apns.key" -out "$T/apns.csr" 2>/dev/null &&
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$T/apns.ext" &&
    openssl x509 -req -in "$T/apns.csr" -CA "$T/apns-ca.crt" -CAkey "$T/apns-ca.key" -CAcreateserial \
        -days 2 -extfile "$T/apns.ext" -out "$T/apns.crt" 2>/dev/null &&
    openssl req -new -newkey rsa:2048 -nodes -subj "/UID=$TOPIC/CN=APSP:test" \
        -keyout "$T/push.key" -out "$T/push.csr" 2>/dev/null &&
    printf 'extendedKeyUsage=clientAuth\n' >"$T/push.ext" &&
    openssl x509 -req -in "$T/push.csr" -CA "$T/apns-ca.crt" -CAkey "$T/apns-ca.key" -CAcreateserial \
        -days 2 -extfile "$T/push.ext" -out "$T/push.crt" 2>/dev/null
}

# start_mock_apns [flags]: sets APNS_PORT, APNS_PID; records pushes in $T/pushes.
start_mock_apns() {
    rm -f "$T/apns.port"
    "$BIN/mockapns" --listen 127.0.0.1:0 --port-file "$T/apns.port" --cert "$T/apns.crt" \
        --key "$T/apns.key" --client-ca "$T/apns-ca.crt" --topic "$TOPIC" --record "$T/pushes" \
        "$@" >>"$T/mockapns.log" 2>&1 &
    APNS_PID=$!; PIDS+=("$APNS_PID")
    wait_for 10 test -s "$T/apns.port" || return 1
    APNS_PORT=$(cat "$T/apns.port")
}

apns_conf() {
    echo "apns_cert_file $T/push.crt"; echo "apns_key_file $T/push.key"
    echo "apns_host 127.0.0.1"; echo "apns_port $APNS_PORT"; echo "apns_ca_file $T/apns-ca.crt"
}
