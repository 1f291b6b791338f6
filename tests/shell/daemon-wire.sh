#!/usr/bin/env bash
# Shows the wire behaviour of a libdaemon server: two requests in one write() get two replies;
# a request over the size cap gets response "failed" / "request too large" while another client
# keeps being served; a panicking handler does not kill the daemon; -l wire logs "<- "/"-> "
# lines; systemd socket activation (fd 3) is used and the socket is kept on exit; the optional
# root-only check answers a non-root client with an error; the client's error for a missing socket.
# timeout: 30
. "$(dirname "$0")/../lib/common.sh"
need_cmd socat
export RUST_BACKTRACE=0
TESTD=$BIN/testd TESTC=$BIN/testc
[ -x "$TESTD" ] && [ -x "$TESTC" ] || fail "no $TESTD or $TESTC: cargo build --workspace --all-targets"
S=$TESTDIR/testd.socket
"$TESTD" -f -l wire,info -s "$S" -p "$TESTDIR/pid" --max-message 65536 2>"$TESTDIR/stderr" &
pid=$!
at_exit "kill -9 $pid"
wait_for_socket "$S"

# Two requests in one write().
out=$(printf 'request = "echo"\ntext = "one"\n##\nrequest = "echo"\ntext = "two"\n##\n' |
      socat -t 1 - "UNIX-CONNECT:$S")
[ "$(echo "$out" | grep -c '^##$')" = 2 ] || fail "pipelined: $out"
echo "$out" | grep -q 'text="one"' && echo "$out" | grep -q 'text="two"' || fail "pipelined: $out"
note "two requests in one write: two replies"

# Over the cap: an error reply, the connection is closed, another client is fine.
{ printf 'request = "hello"\n##\n'; sleep 30; } | socat - "UNIX-CONNECT:$S" >"$TESTDIR/other" &
at_exit "kill $! 2>/dev/null"
reply=$({ printf 'request = "echo"\ntext = "'; head -c 200000 /dev/zero | tr '\0' x; printf '"\n'; } |
        "$TESTC" --raw "$S") || fail "no reply to the oversized request"
[ "$reply" = "$(printf 'response = "failed"\nreason = "request too large (limit 65536 bytes)"\n')" ] ||
    fail "oversized reply: $reply"
"$TESTC" "$S" testd 1 | grep -q 'hello OK' || fail "daemon stopped serving"
grep -q OK "$TESTDIR/other" || fail "other client not served"
note "oversized request: $(echo $reply)"

# A panicking handler.
reply=$(printf 'request = "panic"\n' | send "$S")
echo "$reply" | grep -q '^response = "failed"$' || fail "panic reply: $reply"
"$TESTC" "$S" testd 1 >/dev/null || fail "daemon died with the handler"

# Wire log.
grep -q '^<- request = "panic"$' "$TESTDIR/stderr" || fail "no '<- ' wire lines: $(head "$TESTDIR/stderr")"
grep -q '^-> response = "failed"$' "$TESTDIR/stderr" || fail "no '-> ' wire lines"
grep -q '^I: testd listening on' "$TESTDIR/stderr" || fail "no I: line"
grep -q '^E: request "panic" handler panicked' "$TESTDIR/stderr" || fail "no E: line for the panic"
kill $pid; wait $pid

# Missing socket: the client says so.
err=$("$TESTC" "$TESTDIR/none.socket" testd 2>&1) && fail "connected to nothing"
[ "$err" = "testc: $TESTDIR/none.socket: connect failed: No such file or directory (os error 2)" ] ||
    fail "missing socket message: $err"

# Socket activation: systemd-socket-activate passes fd 3, LISTEN_PID, LISTEN_FDS.
if command -v systemd-socket-activate >/dev/null; then
    A=$TESTDIR/act.socket
    systemd-socket-activate -l "$A" -E SD_ACTIVATION=1 \
        "$TESTD" -f -l info -s "$A" -p "$TESTDIR/act.pid" 2>"$TESTDIR/act.err" &
    apid=$!
    at_exit "kill -9 $apid"
    wait_for_socket "$A"
    "$TESTC" "$A" testd 1 | grep -q 'hello OK' || fail "activated daemon does not answer"
    grep -q 'using the socket passed by systemd' "$TESTDIR/act.err" || fail "fd 3 not adopted: $(cat "$TESTDIR/act.err")"
    kill $apid; wait $apid
    [ -S "$A" ] || fail "activated socket was unlinked (it belongs to systemd)"
    note "socket activation: fd 3 used, socket kept"
    # fd 3 bound to another path is not adopted: the daemon makes its own socket.
    B=$TESTDIR/own.socket
    systemd-socket-activate -l "$TESTDIR/elsewhere.socket" -E SD_ACTIVATION=1 \
        "$TESTD" -f -l info -s "$B" -p "$TESTDIR/own.pid" 2>"$TESTDIR/own.err" &
    bpid=$!
    at_exit "kill -9 $bpid"
    # systemd-socket-activate starts the daemon on the first connection to its socket.
    wait_for_socket "$TESTDIR/elsewhere.socket"
    socat -u /dev/null "UNIX-CONNECT:$TESTDIR/elsewhere.socket"
    wait_for_socket "$B"
    "$TESTC" "$B" testd 1 | grep -q 'hello OK' || fail "daemon with a foreign fd 3 does not answer"
    ! grep -q 'passed by systemd' "$TESTDIR/own.err" || fail "adopted a socket for another path"
    kill $bpid; wait $bpid
fi

# Root-only: a non-root client gets an error reply.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    R=$TESTDIR/root.socket
    "$TESTD" -f -s "$R" -p "$TESTDIR/root.pid" --root-only 2>/dev/null &
    rpid=$!
    at_exit "kill -9 $rpid"
    wait_for_socket "$R"
    "$TESTC" "$R" testd 1 | grep -q 'hello OK' || fail "root refused"
    chmod 777 "$R" "$TESTDIR"
    err=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$TESTC" "$R" testd 1 2>&1) &&
        fail "non-root accepted"
    echo "$err" | grep -q 'permission denied: only root' || fail "non-root message: $err"
    note "root-only: $err"
    kill $rpid; wait $rpid
fi
echo ok
