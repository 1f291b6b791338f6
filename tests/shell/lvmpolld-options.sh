#!/usr/bin/env bash
# lvmpolld's command line and life cycle: -h, -V, a non-executable -B refused at start, --dump
# mixed with server options refused; LVM_LVMPOLLD_SOCKET / LVM_LVMPOLLD_PIDFILE honoured; --dump
# output equals the C client's (C `lvmpolld --dump` against our daemon and ours against C's);
# idle exit with -t only after the last poll ended; daemon mode (no -f); SIGTERM stops children.
# timeout: 60
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/lvmpolld.sh"
need_cmd socat
P=$BIN/lvmpolld
[ -x "$P" ] || fail "no $P: build first"

"$P" -h >"$TESTDIR/help" || fail "-h failed"
check grep -q -- '--dump' "$TESTDIR/help"
check grep -q '^lvmpolld version: ' <("$P" -V)
rc=0 rc2=0 rc3=0
"$P" -f -B /nonexistent/lvm -s "$TESTDIR/x.socket" -p "$TESTDIR/x.pid" 2>"$TESTDIR/err" || rc=$?
"$P" --dump -f >/dev/null 2>"$TESTDIR/err2" || rc2=$?
"$P" -t abc 2>/dev/null || rc3=$?
check test "$rc" = 1
check grep -q 'Execute access rights denied on /nonexistent/lvm' "$TESTDIR/err"
check test ! -e "$TESTDIR/x.socket"
check test "$rc2" = 1
check grep -q 'Invalid combination of client and server parameters' "$TESTDIR/err2"
check test "$rc3" = 1

# environment variables name the socket and pidfile; -t 2: idle exit only after the poll ended
export LVM_LVMPOLLD_SOCKET=$TESTDIR/env.socket LVM_LVMPOLLD_PIDFILE=$TESTDIR/env.pid
FAKE_LVM_LOG=$TESTDIR/env.calls "$P" -f -t 2 -B "$FAKE_LVM" 2>"$TESTDIR/env.log" &
pid=$!
at_exit "kill $pid"
wait_for_socket "$LVM_LVMPOLLD_SOCKET"
polld_ready "$LVM_LVMPOLLD_SOCKET"
check test "$(cat "$LVM_LVMPOLLD_PIDFILE")" = "$pid"
printf 'request = "pvmove"\nlvid = "IDLE1"\nvgname = "vg"\nlvname = "lv-3000-0"\ninterval = "1"\n' |
    polld_raw "$LVM_LVMPOLLD_SOCKET" | grep -q 'response = "OK"' || fail "poll-init refused"
# our --dump and C's --dump print the same text from our daemon
"$P" --dump >"$TESTDIR/dump.rust" || fail "--dump failed"
check grep -q '^  poll {$' "$TESTDIR/dump.rust"
check grep -q '^  		lvid="IDLE1"$' "$TESTDIR/dump.rust"
if [ -x "$C_LVMPOLLD" ]; then
    # The poll moves on between two dumps (its lvm child starts, gets a pid, finishes): compare
    # two taken back to back, again while they differ; a difference of form never goes away.
    same=0
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        "$P" --dump >"$TESTDIR/dump.rust" || fail "--dump failed"
        "$C_LVMPOLLD" --dump >"$TESTDIR/dump.c" || fail "C --dump against our daemon failed"
        cmp -s "$TESTDIR/dump.rust" "$TESTDIR/dump.c" && { same=1; break; }
        sleep 0.1
    done
    [ $same = 1 ] || fail "C --dump and ours differ: $(diff "$TESTDIR/dump.rust" "$TESTDIR/dump.c")"
else
    note "SKIPPED: C --dump against our daemon ($C_LVMPOLLD not installed)"
fi
sleep 2.5
check kill -0 "$pid"    # still running: a poll is active although 2 s passed
wait_gone "$pid" 8 || fail "daemon did not exit when idle"
check test ! -e "$LVM_LVMPOLLD_SOCKET"
check test ! -e "$LVM_LVMPOLLD_PIDFILE"
unset LVM_LVMPOLLD_SOCKET LVM_LVMPOLLD_PIDFILE

# our --dump against the C daemon prints what C's own --dump prints
if [ -x "$C_LVMPOLLD" ]; then
    polld_start cref "$C_LVMPOLLD"
    printf 'request = "merge"\nlvid = "CREF"\nvgname = "vg"\nlvname = "lv-3000-0"\ninterval = "2"\nsysdir = "/x"\n' |
        polld_raw "$TESTDIR/cref.socket" | grep -q 'response = "OK"' || fail "C lvmpolld refused the merge poll"
    "$C_LVMPOLLD" --dump -s "$TESTDIR/cref.socket" | sed -E 's/pid=[0-9]+/pid=N/' >"$TESTDIR/cdump.c"
    "$P" --dump -s "$TESTDIR/cref.socket" | sed -E 's/pid=[0-9]+/pid=N/' >"$TESTDIR/cdump.rust"
    check grep -q 'LVM_SYSTEM_DIR="/x"' "$TESTDIR/cdump.rust"
    check cmp -s "$TESTDIR/cdump.c" "$TESTDIR/cdump.rust"
else
    note "SKIPPED: our --dump against the C daemon ($C_LVMPOLLD not installed)"
fi

# pvmove --abort stops the running poll of the same LV (a deliberate difference from C)
FAKE_LVM_LOG=$TESTDIR/a.calls "$P" -f -l info -s "$TESTDIR/a.socket" -p "$TESTDIR/a.pid" -B "$FAKE_LVM" 2>"$TESTDIR/a.log" &
apid=$!
at_exit "kill $apid"
wait_for_socket "$TESTDIR/a.socket"
polld_ready "$TESTDIR/a.socket"
printf 'request = "pvmove"\nlvid = "ABRT"\nvgname = "vg"\nlvname = "lv-30000-0"\ninterval = "1"\n' |
    polld_raw "$TESTDIR/a.socket" >/dev/null
printf 'request = "pvmove"\nlvid = "ABRT"\nvgname = "vg"\nlvname = "lv-200-0"\ninterval = "0"\nabort = 1\n' |
    polld_raw "$TESTDIR/a.socket" | grep -q 'response = "OK"' || fail "abort poll-init refused"
polld_wait_finished "$TESTDIR/a.socket" ABRT 10
got=$(printf 'request = "progress_info"\nlvid = "ABRT"\n' | polld_raw "$TESTDIR/a.socket")
[ "$got" = "$(printf 'response = "finished"\nreason = "signal"\nvalue = 15\n\n##')" ] ||
    fail "regular poll after abort: $got"
check grep -q 'abort requested, stopping the poll of ABRT' "$TESTDIR/a.log"
kill "$apid"

# daemon mode; SIGTERM while a poll runs: the child gets SIGTERM, everything is cleaned up
FAKE_LVM_LOG=$TESTDIR/d.calls "$P" -s "$TESTDIR/d.socket" -p "$TESTDIR/d.pid" -B "$FAKE_LVM" ||
    fail "daemonizing failed"
check test -S "$TESTDIR/d.socket"
dpid=$(cat "$TESTDIR/d.pid")
at_exit "kill $dpid"
printf 'request = "pvmove"\nlvid = "TERM1"\nvgname = "vg"\nlvname = "lv-30000-0"\ninterval = "1"\n' |
    polld_raw "$TESTDIR/d.socket" >/dev/null
for _ in $(seq 50); do [ -s "$TESTDIR/d.calls" ] && break; sleep 0.1; done
cpid=$(sed -n 's/^pid=\([0-9]*\) .*/\1/p' "$TESTDIR/d.calls")
check test -n "$cpid"
check kill -0 "$cpid"
kill "$dpid"
wait_gone "$dpid" 10 || fail "daemon did not exit on SIGTERM"
wait_gone "$cpid" 5 || fail "lvpoll child survived the daemon's shutdown"
check test ! -e "$TESTDIR/d.socket"
check test ! -e "$TESTDIR/d.pid"
echo "options: all checks passed"
