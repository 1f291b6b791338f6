#!/usr/bin/env bash
# Load on lvmetad: 256 concurrent clients of mixed reads and idempotent writes for 15 s
# (lvmetad-bench mixed; the 60 s form is `REL_LOAD_SECS=60 ./test.sh rel-load`) get no error
# reply, every lookup is right afterwards, and RSS and thread count (/proc/PID/status) come back
# flat once they leave. Slow clients: 8 clients trickling one byte a second do not slow a normal
# client down, on lvmetad and on lvmpolld. (200 concurrent lvmpolld polls: lvmpolld-load.sh.)
# timeout: 150
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/lvmetad.sh"
. "$TOP/tests/lib/lvmpolld.sh"
need_cmd socat
HOSTILE=$TOP/target/debug/examples/hostile
[ -x "$HOSTILE" ] || fail "no $HOSTILE: cargo build --workspace --all-targets"
SECS=${REL_LOAD_SECS:-15}
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }
# settle PID: wait until the daemon is back to its main thread(s) after clients leave.
settle() {
    local i
    for ((i = 0; i < 100; i++)); do [ "$(threads "$1")" -le "$2" ] && return 0; sleep 0.1; done
    return 1
}

start_lvmetad
bench populate 100 10 >/dev/null || fail "populate"
t_idle=$(threads "$LVMETAD_PID")
# Warm-up: 256 threads once, so the allocator and the memos reach their working size.
bench mixed 256 3 100 10 >/dev/null || fail "warm-up got errors"
settle "$LVMETAD_PID" "$t_idle" || fail "threads not back to $t_idle after warm-up"
rss0=$(rss_kib "$LVMETAD_PID")
( sleep $((SECS / 2)); echo "$(threads "$LVMETAD_PID") $(rss_kib "$LVMETAD_PID")" >"$TESTDIR/peak" ) &
bench mixed 256 "$SECS" 100 10 || fail "256 mixed clients got errors"
read -r t_peak rss_peak <"$TESTDIR/peak"
settle "$LVMETAD_PID" "$t_idle" || fail "threads not back to $t_idle: $(threads "$LVMETAD_PID")"
rss1=$(rss_kib "$LVMETAD_PID")
note "lvmetad, 256 clients x ${SECS} s: threads idle $t_idle, during $t_peak, after $(threads "$LVMETAD_PID"); RSS after warm-up $rss0 KiB, during $rss_peak KiB, after $rss1 KiB"
[ "$t_peak" -gt 200 ] || fail "the load did not run 256 connection threads (saw $t_peak)"
# Memory goes back after the load (the peak is ~2x); what stays is bounded. Under 256 concurrent
# clients RSS still creeps up ~1 MiB per 6 s run (not with 8 clients or 8000 sequential ones):
# see docs/reliability.md; the bound here catches anything worse.
[ "$rss1" -lt "$rss_peak" ] || fail "RSS not given back after the load: during $rss_peak, after $rss1 KiB"
[ "$rss1" -le $((rss0 + SECS * 1024)) ] || fail "RSS grew from $rss0 to $rss1 KiB"
bench check 100 10 >/dev/null || fail "lookups wrong after the load"

# Slow clients on lvmetad while the normal client works.
"$HOSTILE" slow "$SOCK" lvmetad 8 6 || fail "slow clients held up lvmetad"
settle "$LVMETAD_PID" "$t_idle" || fail "lvmetad threads not back after slow clients"

polld_start slow "$BIN/lvmpolld"
"$HOSTILE" slow "$TESTDIR/slow.socket" lvmpolld 8 6 || fail "slow clients held up lvmpolld"
kill -0 "$PID_slow" || fail "lvmpolld died"
echo PASS
