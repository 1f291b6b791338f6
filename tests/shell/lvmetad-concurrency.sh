#!/usr/bin/env bash
# lvmetad under concurrent clients: 8 dump clients for 10 s must leave every vg_lookup correct
# (C 2.02.187 renames cached trees during dump and breaks later lookups); then 64 clients of
# mixed reads and idempotent writes for 30 s get no error reply and the daemon's RSS levels off.
# timeout: 140
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

# Warm up (64 threads, memos, the allocator's working set), then two 15 s halves. A leak grows
# without bound; the daemon's RSS must level off. It does not stand still at once: each of the 64
# threads' stacks deepens when it first runs a deep path (debug frames are large), and this debug
# build serves only ~700 requests/s on a shared machine (a release build levels off at ~15 MB
# after ~200k requests, then stays within 0.1 MB). So: the second half adds at most 2 MiB, and
# RSS stays under 24 MiB (C 2.02.187 reaches 32 MB with 8 pv_list clients alone).
bench mixed 64 15 300 30 >/dev/null || fail "warm-up got errors"
rss0=$(rss_kib "$LVMETAD_PID")
bench mixed 64 15 300 30 || fail "mixed clients got errors"
rss1=$(rss_kib "$LVMETAD_PID")
bench mixed 64 15 300 30 || fail "mixed clients got errors"
rss2=$(rss_kib "$LVMETAD_PID")
note "RSS after warm-up ${rss0} KiB, after 15 s ${rss1} KiB, after 30 s ${rss2} KiB"
[ "$rss2" -le $((rss1 + 2048)) ] || fail "RSS still growing: $rss1 -> $rss2 KiB"
[ "$rss2" -le $((24 * 1024)) ] || fail "RSS $rss2 KiB above 24 MiB"
bench check 300 30 || fail "lookups wrong after the mixed load"
kill -0 "$LVMETAD_PID" || fail "daemon died"
echo PASS
