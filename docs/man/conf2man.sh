#!/bin/sh
# conf2man.sh PAGE.in mdmd.conf.example VERSION: prints the man page with the
# KEYS section made from the example file, so that every key the server knows
# (test_conf checks the example names them all) is documented, with its
# default and its comment.  Keys that share one comment share one entry.
in=$1; example=$2; version=$3
keys() {
    awk '
    function esc(s) { gsub(/\\/, "\\e", s); gsub(/-/, "\\-", s); return s }
    function flush(   i) {
        if (nk == 0) { nc = 0; return }
        for (i = 1; i <= nk; i++) printf "%s\n.B %s\n", (i == 1 ? ".TP" : ".TQ"), esc(key[i])
        for (i = 1; i <= nc; i++) { line = esc(com[i]); if (line ~ /^[.\047]/) line = "\\&" line; print line }
        for (i = 1; i <= nk; i++) printf "%sDefault%s \\fB%s\\fR.\n", (i == 1 ? ".br\n" : ""), (nk > 1 ? " of " esc(key[i]) ":" : ":"), (val[i] == "" || val[i] == "\"\"" ? "empty" : esc(val[i]))
        nk = 0; nc = 0
    }
    /^## / { if (!started) started = 1; flush(); sub(/^## /, ""); printf ".SS %s\n", esc($0); next }
    !started { next }
    /^#/ { if (nk > 0) flush(); sub(/^# ?/, ""); com[++nc] = $0; next }
    /^[ \t]*$/ { flush(); next }
    { k = $1; v = $0; sub(/^[^ \t]+[ \t]+/, "", v); key[++nk] = k; val[nk] = v }
    END { flush() }
    ' "$example"
}
while IFS= read -r line; do
    case "$line" in
        '.\" @KEYS@') keys ;;
        *) printf '%s\n' "$line" | sed "s/@VERSION@/$version/g" ;;
    esac
done <"$in"
