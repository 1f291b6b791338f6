#!/usr/bin/env bash
# Shows libdaemon's life cycle without -f: the parent exits 0 once the daemonized child serves
# (pidfile written and locked, setsid, cwd /, stdio on /dev/null, socket srwx------); a second
# instance on the same pidfile exits 13 with lvm2's message; one on the same socket is refused;
# after kill -9 the stale socket and pidfile are reused; a regular file at the socket path is
# refused and left alone; SIGTERM removes socket and pidfile.
# timeout: 30
. "$(dirname "$0")/../lib/common.sh"
need_cmd socat
TESTD=$BIN/testd
[ -x "$TESTD" ] || fail "no $TESTD: cargo build --workspace --all-targets"
S=$TESTDIR/testd.socket P=$TESTDIR/testd.pid
stop() { [ -f "$P" ] && kill -9 "$(cat "$P")" 2>/dev/null; }
at_exit stop

hello() { printf 'request = "hello"\n' | send "$1"; }
# wait_dead PID SECS: a daemonized process is reaped by init whenever init gets to it, so an
# exited zombie counts as gone.
wait_dead() {
    local i st
    for ((i = 0; i < $2 * 100; i++)); do
        st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
        [[ -z $st || $st == Z* ]] && return 0
        sleep 0.01
    done
    return 1
}

# Daemonize: the parent returns 0 only once the child is serving. fd 9 is a stray the child
# must not keep.
exec 9>"$TESTDIR/stray"
rc=0; "$TESTD" -s "$S" -p "$P" || rc=$?
exec 9>&-
[ $rc = 0 ] || fail "daemonizing testd exited $rc"
[ -S "$S" ] || fail "socket not there when the parent returned"
pid=$(cat "$P") || fail "no pidfile"
kill -0 "$pid" || fail "daemon pid $pid from the pidfile is not running"
note "daemon pid $pid"
[ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ] || fail "daemon is not a session leader"
[ "$(readlink /proc/$pid/cwd)" = / ] || fail "daemon cwd is not /"
[ "$(readlink /proc/$pid/fd/0)" = /dev/null ] || fail "stdin not /dev/null"
[ "$(readlink /proc/$pid/fd/2)" = /dev/null ] || fail "stderr not /dev/null"
for fd in /proc/$pid/fd/*; do
    [ "$(readlink "$fd")" != "$TESTDIR/stray" ] || fail "daemon kept the stray fd ${fd##*/}"
done
[ "$(stat -c %A "$S")" = srwx------ ] || fail "socket mode $(stat -c %A "$S")"
[ "$(hello "$S")" = "$(printf 'response = "OK"\nprotocol = "testd"\nversion = 1\n')" ] ||
    fail "hello reply: $(hello "$S" | od -c)"
# The wire style of lvm2's tree writer is accepted too.
printf 'request="hello"\n' | send "$S" | grep -q '^response = "OK"$' || fail "tree-style hello"

# A second instance, same pidfile: exit 13 and lvm2's message (from the waiting parent).
rc=0; err=$("$TESTD" -s "$TESTDIR/other.socket" -p "$P" 2>&1) || rc=$?
[ $rc = 13 ] || fail "second instance on the same pidfile exited $rc: $err"
[ "$err" = "Failed to acquire lock on $P. Already running?" ] || fail "message: $err"
[ ! -e "$TESTDIR/other.socket" ] || fail "refused instance left a socket"
# Same socket, other pidfile: a live daemon answers there.
rc=0; err=$("$TESTD" -s "$S" -p "$TESTDIR/other.pid" 2>&1) || rc=$?
[ $rc = 1 ] || fail "second instance on the same socket exited $rc: $err"
echo "$err" | grep -q "already in use" || fail "message: $err"
echo "$err" | grep -q "Child exited with code 1" || fail "message: $err"
hello "$S" | grep -q OK || fail "first daemon harmed by the refused ones"

# kill -9 leaves a stale socket and an unlocked pidfile: both are reused.
kill -9 "$pid"; wait_dead "$pid" 5 || fail "kill -9 did not work"
[ -S "$S" ] && [ -f "$P" ] || fail "expected a stale socket and pidfile"
"$TESTD" -s "$S" -p "$P" || fail "restart over a stale socket failed"
pid2=$(cat "$P")
[ "$pid2" != "$pid" ] || fail "pidfile not rewritten"
hello "$S" | grep -q OK || fail "restarted daemon does not answer"
note "stale socket reused by pid $pid2"

# SIGTERM: exits, removes socket and pidfile.
kill -TERM "$pid2"
wait_dead "$pid2" 1 || fail "no exit within 1 s of SIGTERM"
[ ! -e "$S" ] || fail "socket left behind"
[ ! -e "$P" ] || fail "pidfile left behind"

# A regular file at the socket path is refused, untouched.
echo precious > "$S"
rc=0; err=$("$TESTD" -s "$S" -p "$P" 2>&1) || rc=$?
[ $rc = 1 ] || fail "non-socket path accepted (exit $rc)"
echo "$err" | grep -q "not a socket" || fail "message: $err"
[ "$(cat "$S")" = precious ] || fail "the file was modified"
note "non-socket refused: $(echo "$err" | head -1)"
echo "ok"
