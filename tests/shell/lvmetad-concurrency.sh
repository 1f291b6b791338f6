#!/usr/bin/env bash
# lvmetad under concurrent clients: 8 dump clients for 10 s must leave every vg_lookup correct
# (C 2.02.187 renames cached trees during dump and breaks later lookups); then 64 clients of
# mixed reads and idempotent writes for 30 s get no error reply and the daemon's RSS stays flat.
# timeout: 120
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/lvmetad.sh"
need_cmd socat

start_lvmetad
bench populate 300 30 >/dev/null || fail "populate"
bench check 300 30 >/dev/null || fail "lookups after populate"
before=$(ask 'request="vg_lookup"
name="vg7"')

bench dumps 8 10 || fail "dump clients got errors"
bench check 300 30 || fail "lookups wrong after concurrent dumps"
check [ "$before" = "$(ask 'request="vg_lookup"
name="vg7"')" ]

# Warm up (64 threads, memos, each thread's stack high-water), then two 15 s halves. Growth
# must stop: the second half may not add more than allocator noise, the whole run not more
# than each of 64 threads reaching a deeper stack page or two.
bench mixed 64 10 300 30 >/dev/null || fail "warm-up got errors"
rss0=$(rss_kib "$LVMETAD_PID")
bench mixed 64 15 300 30 || fail "mixed clients got errors"
rss1=$(rss_kib "$LVMETAD_PID")
bench mixed 64 15 300 30 || fail "mixed clients got errors"
rss2=$(rss_kib "$LVMETAD_PID")
note "RSS after warm-up ${rss0} KiB, after 15 s ${rss1} KiB, after 30 s ${rss2} KiB"
[ "$rss2" -le $((rss1 + 512)) ] || fail "RSS still growing: $rss1 -> $rss2 KiB"
[ "$rss2" -le $((rss0 + 2048)) ] || fail "RSS grew from $rss0 to $rss2 KiB"
bench check 300 30 || fail "lookups wrong after the mixed load"
kill -0 "$LVMETAD_PID" || fail "daemon died"
echo PASS
