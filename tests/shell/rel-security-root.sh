#!/usr/bin/env bash
# Security (as root): lvmetad's and lvmpolld's sockets are root-owned with no group/other access
# (srwx------, as lvm2); with --root-only a
# non-root client (setpriv to nobody, socket made reachable with chmod) is refused with an error
# while root is served; at start, a socket path owned by another user, a regular file or a FIFO at
# the socket path, and a pidfile that is a symlink are refused and left untouched.
# timeout: 60
. "$(dirname "$0")/../lib/common.sh"
need_root
need_cmd setpriv socat
TESTC=$TOP/target/debug/testc
[ -x "$TESTC" ] || fail "no $TESTC: cargo build --workspace --all-targets"
FAKE_LVM=$TOP/tests/data/lvmpolld/fake-lvm
chmod 755 "$TESTDIR"
refusals=0

# start NAME DAEMON ARGS...: run DAEMON -f on $TESTDIR/NAME.socket; sets DPID.
start() {
    local name=$1 daemon=$2; shift 2
    local extra=(); [ "$daemon" = lvmpolld ] && extra=(-B "$FAKE_LVM")
    "$BIN/$daemon" -f -s "$TESTDIR/$name.socket" -p "$TESTDIR/$name.pid" "${extra[@]}" "$@" \
        >"$TESTDIR/$name.log" 2>&1 &
    DPID=$!
    at_exit "kill -9 $DPID"
}
# refused NAME DAEMON WHAT: the daemon must exit non-zero at start, naming the problem.
refused() {
    local name=$1 daemon=$2 what=$3 rc
    start "$name" "$daemon"
    wait_gone "$DPID" 5 || fail "$daemon started despite $what"
    rc=0; wait "$DPID" || rc=$?
    [ "$rc" != 0 ] || fail "$daemon exited 0 despite $what"
    note "$daemon refuses $what (exit $rc): $(head -1 "$TESTDIR/$name.log")"
    refusals=$((refusals + 1))
}

for d in lvmetad lvmpolld; do
    start "$d" "$d" --root-only
    wait_for_socket "$TESTDIR/$d.socket"
    sleep 0.2
    mode=$(stat -c '%a %U %F' "$TESTDIR/$d.socket")
    # srwx------ as lvm2 makes it (bind under umask 0077): no group or other access.
    [ "$mode" = "700 root socket" ] || fail "$d socket is $mode"
    "$TESTC" "$TESTDIR/$d.socket" "$d" 1 | grep -q 'hello OK' || fail "$d refused root"
    chmod 777 "$TESTDIR/$d.socket"
    err=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$TESTC" "$TESTDIR/$d.socket" "$d" 1 2>&1) &&
        fail "$d accepted a non-root client"
    echo "$err" | grep -q 'permission denied: only root' || fail "$d non-root message: $err"
    "$TESTC" "$TESTDIR/$d.socket" "$d" 1 | grep -q 'hello OK' || fail "$d stopped serving root"
    note "$d: socket $mode; nobody gets: $err"
    kill "$DPID"; wait_gone "$DPID" || fail "$d did not stop"

    # A socket at the path owned by another user.
    python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$TESTDIR/$d-foreign.socket"
    chmod 600 "$TESTDIR/$d-foreign.socket"; chown nobody "$TESTDIR/$d-foreign.socket"
    refused "$d-foreign" "$d" "a socket path owned by nobody"
    [ "$(stat -c %U "$TESTDIR/$d-foreign.socket")" = nobody ] || fail "$d touched the foreign socket"
    # A regular file and a FIFO at the socket path.
    echo keep >"$TESTDIR/$d-file.socket"
    refused "$d-file" "$d" "a regular file at the socket path"
    [ "$(cat "$TESTDIR/$d-file.socket")" = keep ] || fail "$d changed the regular file"
    mkfifo "$TESTDIR/$d-fifo.socket"
    refused "$d-fifo" "$d" "a FIFO at the socket path"
    [ -p "$TESTDIR/$d-fifo.socket" ] || fail "$d removed the FIFO"
    # A pidfile that is a symlink.
    echo victim >"$TESTDIR/$d-victim"
    ln -s "$TESTDIR/$d-victim" "$TESTDIR/$d-link.pid"
    refused "$d-link" "$d" "a symlink as pidfile"
    [ "$(cat "$TESTDIR/$d-victim")" = victim ] || fail "$d wrote through the pidfile symlink"
done
note "$refusals hostile start-up conditions refused"
echo PASS
