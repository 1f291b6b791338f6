#!/usr/bin/env bash
# Load: 200 concurrent polls of distinct LVs through our lvmpolld (fake lvm via -B), progress
# queried for all of them throughout; every poll finishes with retcode 0 and is handed out once,
# every child is reaped (no zombies, checked in /proc during and after), the daemon's RSS is
# reported.
# timeout: 120
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/lvmpolld.sh"
[ -x "$BIN/lvmpolld-bench" ] || fail "no $BIN/lvmpolld-bench: cargo build --workspace --all-targets"
N=200
export FAKE_LVM_STEP_MS=1000
polld_start load "$BIN/lvmpolld"
pid=$PID_load

# sample the daemon's children while the load runs
(
    while kill -0 "$pid" 2>/dev/null; do
        c=$(children_of "$pid")
        printf '%s %s %s\n' "$(grep -c . <<<"$c")" "$(grep -c ' Z$' <<<"$c")" \
            "$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")"
        # one line per sample: the zombie pids seen in it
        echo $(awk '$2 == "Z" { print $1 }' <<<"$c") >>"$TESTDIR/zombies"
        sleep 0.5
    done
) >"$TESTDIR/samples" &
SAMPLER=$!
at_exit "kill $SAMPLER"

"$BIN/lvmpolld-bench" load "$TESTDIR/load.socket" "$N" 4000 || fail "load driver failed"
# Every result is collected: the watcher reaps the last children within its 1 s sweep.
for ((i = 0; i < 50; i++)); do
    [ -z "$(children_of "$pid")" ] && break
    sleep 0.1
done
kill "$SAMPLER" 2>/dev/null || true
left=$(children_of "$pid")
[ -z "$left" ] || fail "children left after all polls finished: $left"
check test "$(grep -c . "$TESTDIR/load.calls")" = "$N"
ok=$(grep -c 'finished successfully' "$TESTDIR/load.log")
[ "$ok" = "$N" ] || fail "$ok of $N commands logged as finished successfully"
check grep -q "LVPOLL: PID [0-9]*: STDOUT: '  vg/lv199-4000-0: Moved: 100.00%'" "$TESTDIR/load.log"
max_children=$(awk 'max < $1 { max = $1 } END { print max + 0 }' "$TESTDIR/samples")
max_rss=$(awk 'max < $3 { max = $3 } END { print max + 0 }' "$TESTDIR/samples")
# A zombie exists between a child's exit and its reaping; when many children exit at once on a
# busy machine, a sample can catch dozens of them. What must never happen is a child left
# unreaped: no pid may stay a zombie across 4 samples in a row (about 2 s; the watcher reaps
# within one loop turn, and sweeps every child once a second).
max_zombies=$(awk 'max < $2 { max = $2 } END { print max + 0 }' "$TESTDIR/samples")
stuck=$(awk '{ for (i = 1; i <= NF; i++) run[$i] = (prev[$i] ? run[$i] + 1 : 1); delete prev
               for (i = 1; i <= NF; i++) { prev[$i] = 1; if (run[$i] >= 4) bad[$i] = 1 } }
             END { for (p in bad) printf "%s ", p }' "$TESTDIR/zombies" 2>/dev/null)
[ -z "$stuck" ] || fail "children left unreaped for 2 s or more: $stuck"
note "peak children $max_children, peak zombies in a sample $max_zombies, peak RSS ${max_rss} KiB, VmHWM $(awk '/^VmHWM/ {print $2}' "/proc/$pid/status") KiB, threads now $(ls "/proc/$pid/task" | wc -l)"
[ "$max_children" -ge $((N / 2)) ] || fail "polls did not run concurrently (peak $max_children children)"
kill "$pid"
wait_gone "$pid" 10 || fail "daemon did not exit on SIGTERM"
check test ! -e "$TESTDIR/load.socket"
echo "load: $N polls finished and reaped"
