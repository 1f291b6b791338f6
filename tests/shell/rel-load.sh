#!/usr/bin/env bash
# Load on lvmetad: 256 concurrent clients of mixed reads and idempotent writes for 15 s
# (lvmetad-bench mixed; the 60 s form is `REL_LOAD_SECS=60 ./test.sh rel-load`) get no error
# reply, every lookup is right afterwards, and thread count and RSS (/proc/PID/status) come back
# to idle once they leave (RSS within 80 bytes a request: a 100-byte-a-request leak fails). Slow clients: 8 clients trickling one byte a second do not slow a normal
# client down, on lvmetad and on lvmpolld. (200 concurrent lvmpolld polls: lvmpolld-load.sh.)
# timeout: 150
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/lvmetad.sh"
. "$TOP/tests/lib/lvmpolld.sh"
need_cmd socat
HOSTILE=$TOP/target/debug/hostile-client
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
# RSS is read after a full lookup pass, so every reply memo is built both times.
bench check 100 10 >/dev/null || fail "lookups wrong after the warm-up"
rss0=$(rss_settled "$LVMETAD_PID")
( sleep $((SECS / 2)); echo "$(threads "$LVMETAD_PID") $(rss_kib "$LVMETAD_PID")" >"$TESTDIR/peak" ) &
bench mixed 256 "$SECS" 100 10 >"$TESTDIR/load.out" || { cat "$TESTDIR/load.out"; fail "256 mixed clients got errors"; }
cat "$TESTDIR/load.out"
n=$(sed -n 's/^\([0-9]*\) requests.*/\1/p' "$TESTDIR/load.out")
[ "${n:-0}" -gt 0 ] || fail "no request count from the bench"
read -r t_peak rss_peak <"$TESTDIR/peak"
settle "$LVMETAD_PID" "$t_idle" || fail "threads not back to $t_idle: $(threads "$LVMETAD_PID")"
bench check 100 10 >/dev/null || fail "lookups wrong after the load"
rss1=$(rss_settled "$LVMETAD_PID")
bound=$(leak_bound_kib "$n")
note "lvmetad, 256 clients x ${SECS} s, $n requests: threads idle $t_idle, during $t_peak, after $(threads "$LVMETAD_PID"); RSS idle $rss0 KiB, during $rss_peak KiB, after $rss1 KiB (allowed growth $bound KiB)"
[ "$t_peak" -gt 200 ] || fail "the load did not run 256 connection threads (saw $t_peak)"
# The daemon gives its free heap back when the last client leaves, so RSS returns to the idle
# figure: what stays must be below 80 bytes a request (a leak of 100 bytes a request fails).
[ "$rss1" -lt "$rss_peak" ] || fail "RSS not given back after the load: during $rss_peak, after $rss1 KiB"
[ "$rss1" -le $((rss0 + bound)) ] || fail "RSS grew from $rss0 to $rss1 KiB after $n requests (allowed $bound KiB)"

# Slow clients on lvmetad while the normal client works.
"$HOSTILE" slow "$SOCK" lvmetad 8 6 || fail "slow clients held up lvmetad"
settle "$LVMETAD_PID" "$t_idle" || fail "lvmetad threads not back after slow clients"

polld_start slow "$BIN/lvmpolld"
"$HOSTILE" slow "$TESTDIR/slow.socket" lvmpolld 8 6 || fail "slow clients held up lvmpolld"
kill -0 "$PID_slow" || fail "lvmpolld died"
echo PASS
