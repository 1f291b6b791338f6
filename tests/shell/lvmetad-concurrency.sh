#!/usr/bin/env bash
# lvmetad under concurrent clients: 8 dump clients for 10 s (counted) must leave every vg_lookup
# and every pv_lookup byte for byte as before (C 2.02.187 renames cached trees during dump and
# breaks later lookups); then 64 clients of mixed reads and idempotent writes for 30 s get no
# error reply, and once they leave RSS returns to the idle figure within 80 bytes a request (a
# leak of 100 bytes a request fails).
# timeout: 180
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/lvmetad.sh"
need_cmd socat

start_lvmetad
bench populate 300 30 >/dev/null || fail "populate"
bench check 300 30 >/dev/null || fail "lookups after populate"
# every lookup, byte for byte: the 30 VGs by name and the 300 PVs by id
lookups() {
    local i id
    for ((i = 0; i < 30; i++)); do
        printf '== vg%s\n' "$i"
        ask "request=\"vg_lookup\"
name=\"vg$i\""
    done
    for id in $(ask 'request="pv_list"' | sed -n 's/^\t\tid="\(.*\)"$/\1/p'); do
        printf '== %s\n' "$id"
        ask "request=\"pv_lookup\"
uuid=\"$id\""
    done
}
lookups >"$TESTDIR/before"
check [ "$(grep -c '^response="OK"' "$TESTDIR/before")" = 330 ]

bench dumps 8 10 >"$TESTDIR/dumps.out" || { cat "$TESTDIR/dumps.out"; fail "dump clients got errors"; }
cat "$TESTDIR/dumps.out"
dumps=$(sed -n 's/^\([0-9]*\) dumps, 0 errors$/\1/p' "$TESTDIR/dumps.out")
# at least two dumps per client, or the race was never exercised
[ "${dumps:-0}" -ge 16 ] || fail "only ${dumps:-no} dumps ran"
bench check 300 30 || fail "lookups wrong after concurrent dumps"
lookups >"$TESTDIR/after"
diff -u "$TESTDIR/before" "$TESTDIR/after" >&2 || fail "lookups changed by the concurrent dumps"

# Warm up (64 threads, memos, the allocator's working set), then two 15 s halves. Once the
# clients leave, the daemon gives its free heap back: RSS must come back to the idle figure within
# 80 bytes a request, and stay under 24 MiB throughout (C 2.02.187 reaches 32 MB with 8 pv_list
# clients alone).
# RSS is read after a full lookup pass, so every reply memo is built both times.
bench mixed 64 15 300 30 >/dev/null || fail "warm-up got errors"
bench check 300 30 >/dev/null || fail "lookups wrong after the warm-up"
rss0=$(rss_settled "$LVMETAD_PID")
n=0
for half in 1 2; do
    bench mixed 64 15 300 30 >"$TESTDIR/mixed.out" || { cat "$TESTDIR/mixed.out"; fail "mixed clients got errors"; }
    cat "$TESTDIR/mixed.out"
    n=$((n + $(sed -n 's/^\([0-9]*\) requests.*/\1/p' "$TESTDIR/mixed.out")))
    rss=$(rss_kib "$LVMETAD_PID")
    [ "$rss" -le $((24 * 1024)) ] || fail "RSS $rss KiB above 24 MiB"
done
bench check 300 30 || fail "lookups wrong after the mixed load"
rss2=$(rss_settled "$LVMETAD_PID")
bound=$(leak_bound_kib "$n")
note "RSS idle after warm-up ${rss0} KiB, after $n requests ${rss2} KiB (allowed growth $bound KiB)"
[ "$rss2" -le $((rss0 + bound)) ] || fail "RSS grew from $rss0 to $rss2 KiB after $n requests (allowed $bound KiB)"
kill -0 "$LVMETAD_PID" || fail "daemon died"
echo PASS
