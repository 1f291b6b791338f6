#!/usr/bin/env bash
# cmirrord's command line as C's: -h prints usage (exit 0), an unknown option or an extra
# argument prints usage on stderr (exit 2); without -f it forks, the parent exits 0 once the
# child serves, and the child exits on SIGTERM (no logs). Root for the netlink part.
# timeout: 30
. "$(dirname "$0")/../lib/common.sh"
[ -x "$BIN/cmirrord" ] || fail "no $BIN/cmirrord"
out=$("$BIN/cmirrord" -h) || fail "-h exit $?"
echo "$out" | grep -q "^Usage: cmirrord \[options\]" || fail "-h output: $out"
echo "$out" | grep -q -- "-f, --foreground" || fail "-h lacks -f"
"$BIN/cmirrord" --help >/dev/null || fail "--help"
rc=0; "$BIN/cmirrord" -x >/dev/null 2>"$TESTDIR/err" || rc=$?
[ $rc = 2 ] || fail "bad option exit $rc"
grep -q "^Usage:" "$TESTDIR/err" || fail "bad option: usage not on stderr"
rc=0; "$BIN/cmirrord" -f extra >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "extra argument exit $rc"

# Daemon mode with the test kernel socket: the parent returns only when the child is ready.
sock="$TESTDIR/k.sock"
export CMIRRORD_PIDFILE="$TESTDIR/cmirrord.pid"
CMIRRORD_KERNEL_SOCKET="$sock" "$BIN/cmirrord" || fail "daemon start exit $?"
[ -S "$sock" ] || fail "child not serving when the parent exited"
[ -s "$CMIRRORD_PIDFILE" ] || fail "no pidfile while running"
# A second instance finds the pidfile locked: C's exit 2 ("Failed to create lockfile"), in the
# foreground and through the daemonizing parent alike.
rc=0; CMIRRORD_KERNEL_SOCKET="$TESTDIR/k2.sock" "$BIN/cmirrord" -f >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "second instance (-f) exit $rc, want 2"
rc=0; CMIRRORD_KERNEL_SOCKET="$TESTDIR/k2.sock" "$BIN/cmirrord" 2>"$TESTDIR/second.err" || rc=$?
[ $rc = 1 ] || fail "second instance (daemon) exit $rc, want 1"
grep -q "Failed to create lockfile" "$TESTDIR/second.err" || fail "no lockfile message: $(cat "$TESTDIR/second.err")"
child=
for p in /proc/[0-9]*; do
    tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx "CMIRRORD_KERNEL_SOCKET=$sock" && child=${p#/proc/}
done
[ -n "$child" ] || fail "daemonized child not found"
at_exit "kill -9 $child"
# field 6 of /proc/PID/stat is the session id (the comm field has no spaces here)
[ "$(awk '{print $6}' "/proc/$child/stat")" = "$child" ] || fail "child is not a session leader"
[ "$(cat "$CMIRRORD_PIDFILE")" = "$child" ] || fail "pidfile holds $(cat "$CMIRRORD_PIDFILE"), not $child"
[ "$(readlink "/proc/$child/cwd")" = / ] || fail "child cwd is not /"
kill -TERM "$child"
wait_gone "$child" 5 || fail "daemon did not exit on SIGTERM"
[ -e "$sock" ] && fail "kernel socket left behind"
[ -e "$CMIRRORD_PIDFILE" ] && fail "pidfile left behind"

# The real kernel link: netlink connector bound to CN_IDX_DM (needs root and CONFIG_CONNECTOR).
# Where both exist the daemon must start and serve; a daemon that dies is a failure.
if [ "$(id -u)" != 0 ]; then
    note "SKIPPED the netlink part: needs root"
    skip "netlink part needs root (the rest passed)"
elif [ ! -e /proc/net/connector ]; then
    note "SKIPPED the netlink part: kernel without CONFIG_CONNECTOR (no /proc/net/connector)"
    skip "kernel has no netlink connector (the rest passed)"
fi
"$BIN/cmirrord" -f >"$TESTDIR/nl.log" 2>&1 &
pid=$!
at_exit "kill -9 $pid"
for _ in $(seq 100); do
    grep -q "Starting cmirrord:" "$TESTDIR/nl.log" && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
if ! kill -0 $pid 2>/dev/null; then
    rc=0; wait $pid || rc=$?
    fail "netlink daemon died (exit $rc): $(cat "$TESTDIR/nl.log")"
fi
grep -q "Starting cmirrord:" "$TESTDIR/nl.log" || fail "no start message: $(cat "$TESTDIR/nl.log")"
kill -TERM $pid
wait_gone $pid 5 || fail "netlink daemon did not exit on SIGTERM"
rc=0; wait $pid || rc=$?
[ $rc = 0 ] || fail "netlink daemon exit $rc after SIGTERM: $(cat "$TESTDIR/nl.log")"
echo "options: ok"
