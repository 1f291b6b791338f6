#!/usr/bin/env bash
# Shows that SIGTERM stops a libdaemon server in under 1 s with 10 idle clients connected
# (lvm2 2.02.187 waits until every client hangs up), prints the measured time, and that a
# request in flight still gets its reply. With C lvmpolld installed, shows our client's hello
# against it and C's loss of the second of two pipelined requests (which we answer).
# timeout: 30
. "$(dirname "$0")/../lib/common.sh"
need_cmd socat
TESTD=$BIN/examples/testd TESTC=$BIN/examples/testc
S=$TESTDIR/testd.socket P=$TESTDIR/testd.pid
"$TESTD" -f -s "$S" -p "$P" 2>"$TESTDIR/stderr" &
pid=$!
at_exit "kill -9 $pid"
wait_for_socket "$S"

# Ten idle clients: connected, said hello, then silent.
for i in $(seq 10); do
    { printf 'request = "hello"\n\n##\n'; sleep 30; } | socat - "UNIX-CONNECT:$S" >"$TESTDIR/idle$i" &
    at_exit "kill $! 2>/dev/null"
done
# One request in flight across the signal.
{ printf 'request = "sleep"\nms = 400\n\n##\n'; sleep 30; } | socat - "UNIX-CONNECT:$S" >"$TESTDIR/busy" &
at_exit "kill $! 2>/dev/null"
for i in $(seq 100); do
    [ "$(cat "$TESTDIR"/idle* | grep -c OK)" = 10 ] && break; sleep 0.05
done
[ "$(cat "$TESTDIR"/idle* | grep -c OK)" = 10 ] || fail "idle clients not all connected"
sleep 0.1
t0=$(date +%s%N)
kill -TERM $pid
wait $pid; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "SIGTERM with 10 idle clients and 1 request in flight: exited in $ms ms (exit $rc)"
[ $rc = 0 ] || fail "exit code $rc"
[ $ms -lt 1000 ] || fail "took $ms ms"
grep -q 'slept_ms = 400' "$TESTDIR/busy" || fail "request in flight lost: $(cat "$TESTDIR/busy")"
[ ! -e "$S" ] && [ ! -e "$P" ] || fail "socket or pidfile left behind"

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
    kill $cpid
fi
