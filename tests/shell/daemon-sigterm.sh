#!/usr/bin/env bash
# Shows that SIGTERM stops a libdaemon server in under 1 s with 10 idle clients connected
# (lvm2 2.02.187 waits until every client hangs up), prints the measured time, and that a
# request in flight still gets its reply. With C lvmpolld installed, shows our client's hello
# against it and C's loss of the second of two pipelined requests (which we answer).
# timeout: 30
. "$(dirname "$0")/../lib/common.sh"
need_cmd socat
TESTD=$BIN/testd TESTC=$BIN/testc
[ -x "$TESTD" ] && [ -x "$TESTC" ] || fail "no $TESTD or $TESTC: cargo build --workspace --all-targets"
S=$TESTDIR/testd.socket P=$TESTDIR/testd.pid

# start_testd: a foreground testd on $S; sets $pid.
start_testd() {
    "$TESTD" -f -l all -s "$S" -p "$P" 2>>"$TESTDIR/stderr" &
    pid=$!
    at_exit "kill -9 $pid"
    wait_for_socket "$S"
}
# idle_clients N TAG [SECS]: N clients that say hello, then stay connected and silent (30 s).
idle_clients() {
    local i
    for i in $(seq "$1"); do
        { printf 'request = "hello"\n\n##\n'; sleep "${3:-30}"; } | socat - "UNIX-CONNECT:$S" >"$TESTDIR/$2.$i" &
        at_exit "kill $! 2>/dev/null"
    done
    for i in $(seq 100); do
        [ "$(cat "$TESTDIR/$2".* | grep -c OK)" = "$1" ] && return 0; sleep 0.05
    done
    fail "idle clients not all connected"
}
# sigterm_ms: send SIGTERM to $pid, wait for it, set $ms; fail unless exit 0.
sigterm_ms() {
    local t0 rc
    t0=$(date +%s%N)
    kill -TERM "$pid"
    rc=0; wait "$pid" || rc=$?
    [ $rc = 0 ] || fail "exit code $rc after SIGTERM"
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
}

# 1. Ten idle clients connected: exit at once (C 2.02.187 would wait for them forever).
start_testd
idle_clients 10 idle
sigterm_ms
echo "SIGTERM with 10 idle clients connected: exited in $ms ms"
[ "$ms" -lt 1000 ] || fail "took $ms ms"
[ ! -e "$S" ] && [ ! -e "$P" ] || fail "socket or pidfile left behind"

# 2. A request in flight (400 ms) is finished and answered before the exit.
start_testd
idle_clients 3 idle2
{ printf 'request = "sleep"\nms = 400\n\n##\n'; sleep 30; } | socat - "UNIX-CONNECT:$S" >"$TESTDIR/busy" &
at_exit "kill $! 2>/dev/null"
# SIGTERM once the daemon has read the request (its wire log shows it), not after a guess.
for ((i = 0; i < 200; i++)); do
    grep -q '^<- request = "sleep"' "$TESTDIR/stderr" && break
    sleep 0.01
done
grep -q '^<- request = "sleep"' "$TESTDIR/stderr" || fail "the daemon never read the sleep request"
sigterm_ms
echo "SIGTERM with a 400 ms request in flight (read by the daemon): exited in $ms ms"
grep -q 'slept_ms = 400' "$TESTDIR/busy" || fail "request in flight lost: $(cat "$TESTDIR/busy")"
[ "$ms" -lt 1000 ] || fail "took $ms ms"

# Our server answers both of two pipelined requests.
start_testd
n=$(printf 'request = "hello"\n##\nrequest = "hello"\n##\n' | socat -t 1 - "UNIX-CONNECT:$S" | grep -c '^##$')
[ "$n" = 2 ] || fail "our server answered $n of 2 pipelined requests"
sigterm_ms

# Against C lvmpolld (lvm2 2.03), when installed: our client, and pipelining.
if [ -x /sbin/lvmpolld ]; then
    CS=$TESTDIR/c.socket
    /sbin/lvmpolld -f -s "$CS" -p "$TESTDIR/c.pid" -t 0 &
    cpid=$!
    at_exit "kill -9 $cpid"
    wait_for_socket "$CS"
    "$TESTC" "$CS" lvmpolld 1 | grep -q 'hello OK' || fail "our client vs C lvmpolld"
    err=$("$TESTC" "$CS" lvmetad 1 2>&1) && fail "wrong protocol accepted"
    echo "$err" | grep -q 'daemon speaks "lvmpolld" version 1, expected "lvmetad" version 1' ||
        fail "wrong-protocol message: $err"
    n=$(printf 'request = "hello"\n##\nrequest = "hello"\n##\n' | socat -t 1 - "UNIX-CONNECT:$CS" | grep -c '^##$')
    note "C lvmpolld answered $n of 2 pipelined requests"
    [ "$n" = 1 ] || fail "C lvmpolld answered $n of 2 pipelined requests (expected C's loss of the second)"
    # The same SIGTERM measurement against C lvmpolld: it waits until the idle clients hang up
    # (here after 3 s; they could stay forever).
    S=$CS idle_clients 10 cidle 3
    t0=$(date +%s%N)
    kill -TERM $cpid
    wait $cpid
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    echo "C lvmpolld $(/sbin/lvmpolld -V 2>&1 | head -1 | cut -d: -f2): SIGTERM with 10 idle clients connected (they hang up after 3 s): exited in $ms ms"
    [ "$ms" -ge 1500 ] || fail "C lvmpolld exited in $ms ms: it did not wait for its idle clients"
else
    note "SKIPPED: comparison with C lvmpolld (/sbin/lvmpolld not installed)"
fi
