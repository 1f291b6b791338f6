# Helpers for the lvmetad shell tests (source after common.sh).
#   start_lvmetad [ARGS...]   run "lvmetad -f -s $SOCK -p $PIDF -l all" as lvm2's suite does; sets LVMETAD_PID
#   stop_lvmetad              SIGTERM and wait
#   ask TEXT                  send one request (token "skip" added unless TEXT has a token), print the reply
#   field NAME                read `NAME = value` / `NAME=value` from stdin, unquoted
#   rss_kib PID               resident set size
#   rss_settled PID           resident set size once it stops moving
#   leak_bound_kib N          RSS growth allowed after N requests (catches 100 B a request)
SOCK=$TESTDIR/lvmetad.socket
PIDF=$TESTDIR/lvmetad.pid
export LVM_LVMETAD_SOCKET=$SOCK

start_lvmetad() {
    "$BIN/lvmetad" -f -s "$SOCK" -p "$PIDF" -l all "$@" >>"$TESTDIR/lvmetad.log" 2>&1 &
    LVMETAD_PID=$!
    at_exit "kill $LVMETAD_PID"
    wait_for_socket "$SOCK"
}

stop_lvmetad() {
    kill -TERM "$LVMETAD_PID"
    wait_gone "$LVMETAD_PID" 10 || fail "lvmetad did not exit on SIGTERM"
}

ask() {
    case "$1" in
        *token=*) printf '%s\n' "$1" ;;
        *) printf '%s\ntoken="skip"\npid=%s\ncmd="shelltest"\n' "$1" $$ ;;
    esac | send "$SOCK"
}

field() {
    sed -n "s/^$1 *= *//p" | head -1 | sed 's/^"\(.*\)"$/\1/'
}

rss_kib() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# rss_settled PID: RSS once it has stopped moving (two samples 0.2 s apart within 64 KiB; at
# most 5 s), after the daemon gives its free heap back when the last client leaves.
rss_settled() {
    local a b i
    a=$(rss_kib "$1")
    for ((i = 0; i < 25; i++)); do
        sleep 0.2
        b=$(rss_kib "$1")
        [ $((b - a)) -le 64 ] && [ $((a - b)) -le 64 ] && break
        a=$b
    done
    echo "$b"
}

# leak_bound_kib REQUESTS: the growth allowed after REQUESTS requests, 80 bytes a request, so a
# leak of 100 bytes a request (116 with malloc's header) exceeds it.
leak_bound_kib() {
    echo $(($1 * 80 / 1024))
}

bench() { "$BIN/lvmetad-bench" --socket "$SOCK" "$@"; }
