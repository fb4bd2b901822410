#!/usr/bin/env bash
# make install: the files land where PREFIX and DESTDIR say, with sane modes;
# the installed configuration validates; an administrator's configuration is
# never overwritten; the systemd unit verifies; the man pages render without
# warnings and mdmd.conf(5) documents every key.
. "$(dirname "$0")/lib.sh"

# Install what this run built, without rebuilding it.
case "$BIN" in */build-san/bin) MK=(SAN=1) ;; *) MK=() ;; esac
REL=${BIN#"$TOP"/}
inst() {
    make -s -C "$TOP" "${MK[@]}" -o "$REL/mdmd" -o "$REL/mdmctl" install "$@" >"$T/make.log" 2>&1
}
VERSION=$(sed -n 's/^VERSION *:= *//p' "$TOP/Makefile")

R=$T/root
check "make install DESTDIR PREFIX=/usr succeeds" inst DESTDIR="$R" PREFIX=/usr
(cd "$R" && find . -type f | sed 's|^\./|/|' | grep -v '^/usr/share/doc/' | sort) >"$T/files"
cat >"$T/want" <<'EOF'
/etc/mdmd/mdmd.conf
/usr/bin/mdmctl
/usr/lib/systemd/system/mdmd.service
/usr/lib/sysusers.d/mdmd.conf
/usr/sbin/mdmd
/usr/share/man/man1/mdmctl.1
/usr/share/man/man5/mdmd.conf.5
/usr/share/man/man8/mdmd.8
EOF
check "the expected files, and no others" diff -u "$T/want" "$T/files"
check "docs: README, the example, the OpenAPI document, the Redis layout" bash -c \
    "cd '$R/usr/share/doc/mdmd' && ls README.md mdmd.conf.example openapi.json REDIS.md METRICS.md >/dev/null"
check "binaries are 0755, the rest 0644" bash -c "[ \$(stat -c %a '$R/usr/sbin/mdmd')\$(stat -c %a '$R/usr/bin/mdmctl')\$(stat -c %a '$R/usr/share/man/man8/mdmd.8')\$(stat -c %a '$R/usr/lib/systemd/system/mdmd.service') = 755755644644 ]"
check "mdmd --version: the Makefile's VERSION" test "$("$R/usr/sbin/mdmd" --version)" = "mdmd $VERSION"
check "mdmctl --version too" test "$("$R/usr/bin/mdmctl" --version)" = "mdmctl $VERSION"
check "the man pages carry it" grep -q "mdmd $VERSION" "$R/usr/share/man/man8/mdmd.8"
check "the installed configuration validates" bash -c "'$R/usr/sbin/mdmd' -c '$R/etc/mdmd/mdmd.conf' -t | grep -q 'configuration ok'"
check "  with data_dir /var/lib/mdmd" grep -qx 'data_dir /var/lib/mdmd' "$R/etc/mdmd/mdmd.conf"
U=$R/usr/lib/systemd/system/mdmd.service
check "the unit runs /usr/sbin/mdmd with /etc/mdmd/mdmd.conf" grep -qx 'ExecStart=/usr/sbin/mdmd -c /etc/mdmd/mdmd.conf' "$U"
check "the unit is hardened" bash -c "grep -qx 'NoNewPrivileges=yes' '$U' && grep -qx 'ProtectSystem=strict' '$U' && grep -qx 'CapabilityBoundingSet=' '$U' && grep -qx 'User=mdmd' '$U'"
if command -v systemd-analyze >/dev/null; then
    sed "s|/usr/sbin/mdmd|$R/usr/sbin/mdmd|g" "$U" >"$T/mdmd.service"
    check "systemd-analyze verify accepts the unit" systemd-analyze verify --man=no "$T/mdmd.service"
    systemd-analyze security --offline=yes "$T/mdmd.service" 2>/dev/null | tail -n 1 | sed 's/^/    /'
else
    echo "skip systemd-analyze: not installed"
fi

echo "# the administrator's line" >>"$R/etc/mdmd/mdmd.conf"
inst DESTDIR="$R" PREFIX=/usr
check "a second install keeps the administrator's configuration" grep -q "administrator's line" "$R/etc/mdmd/mdmd.conf"
check "PREFIX=/usr/local: configuration under /usr/local/etc" bash -c \
    "inst() { make -s -C '$TOP' ${MK[*]} -o '$REL/mdmd' -o '$REL/mdmctl' install \"\$@\"; } && inst DESTDIR='$T/local' >/dev/null 2>&1 && test -f '$T/local/usr/local/etc/mdmd/mdmd.conf' && grep -q 'ExecStart=/usr/local/sbin/mdmd -c /usr/local/etc/mdmd/mdmd.conf' '$T/local/usr/local/lib/systemd/system/mdmd.service'"

# Every key of the example (which names every key the server knows) is documented.
C5=$R/usr/share/man/man5/mdmd.conf.5
missing=$(awk '/^## /{s=1} s && /^[a-z]/{print $1}' "$TOP/mdmd.conf.example" | while read -r k; do
    grep -qx "\.B $(printf %s "$k" | sed 's/-/\\\\-/g')" "$C5" || echo "$k"; done)
check "mdmd.conf(5) documents every key${missing:+ (missing: $missing)}" test -z "$missing"
if command -v man >/dev/null; then
    for p in man8/mdmd.8 man5/mdmd.conf.5 man1/mdmctl.1; do
        MANWIDTH=80 man --warnings -E UTF-8 -l "$R/usr/share/man/$p" >"$T/page" 2>"$T/warn"
        check "man -l $p renders without warnings" bash -c "[ ! -s '$T/warn' ] && grep -q '^NAME' '$T/page'"
    done
else
    echo "skip man: not installed"
fi
finish
