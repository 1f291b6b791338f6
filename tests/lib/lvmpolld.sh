# Helpers for the lvmpolld shell tests (source after tests/lib/common.sh).
#   polld_start NAME BINARY [ARGS...]  start a daemon in the foreground on $TESTDIR/NAME.socket
#                                      with -B fake-lvm; its log is $TESTDIR/NAME.log and its
#                                      children record their calls in $TESTDIR/NAME.calls
#   polld_ready SOCKET                 wait until the daemon answers hello
#   polld_raw SOCKET                   send stdin as one request, print the raw reply (with "##")
#   polld_wait_finished SOCKET ID      wait (dump) until the entry ID shows polling_finished=1
FAKE_LVM=$TOP/tests/data/lvmpolld/fake-lvm
C_LVMPOLLD=/sbin/lvmpolld

polld_start() {
    local name=$1 bin=$2; shift 2
    rm -f "$TESTDIR/$name.socket"
    FAKE_LVM_LOG=$TESTDIR/$name.calls "$bin" -f -l all -s "$TESTDIR/$name.socket" \
        -p "$TESTDIR/$name.pid" -B "$FAKE_LVM" "$@" >"$TESTDIR/$name.log" 2>&1 &
    eval "PID_$name=$!"
    at_exit "kill $! 2>/dev/null; sleep 0.2; kill -9 $! 2>/dev/null"
    wait_for_socket "$TESTDIR/$name.socket" 10
    polld_ready "$TESTDIR/$name.socket"
}

# polld_ready SOCKET: wait until the daemon answers hello (the socket file exists a moment
# before the daemon listens on it).
polld_ready() {
    local i
    for ((i = 0; i < 100; i++)); do
        echo 'request = "hello"' | polld_raw "$1" 2>/dev/null | grep -q '^response = "OK"' && return 0
        sleep 0.05
    done
    fail "daemon on $1 does not answer"
}

polld_raw() {
    { cat; printf '\n##\n'; } | socat -t 5 - "UNIX-CONNECT:$1"
}

# polld_wait_finished SOCKET ID [SECONDS]
polld_wait_finished() {
    local i n=$(( ${3:-20} * 10 ))
    for ((i = 0; i < n; i++)); do
        echo 'request = "dump"' | polld_raw "$1" | awk -v id="$2" '
            $1 == id && $2 == "{" { inside = 1 }
            inside && /polling_finished=1/ { found = 1 }
            inside && /^\t}$/ { inside = 0 }
            END { exit !found }' && return 0
        sleep 0.1
    done
    fail "entry $2 did not finish on $1"
}

# children_of PID: "pid state" of every process whose parent is PID (from /proc).
children_of() {
    cat /proc/[0-9]*/stat 2>/dev/null |
        awk -v p="$1" '{ pid = $1; sub(/^.*\) /, ""); if ($2 == p) print pid, $1 }'
}
