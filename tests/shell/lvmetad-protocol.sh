#!/usr/bin/env bash
# lvmetad driven as lvm2's test suite does (lvmetad -f -s SOCKET -l all), through socat and
# lvmetactl: command line, population, token mismatch, global and VG invalidation, disable and
# re-enable (direct and by duplicate PVs), bad input that C dies on, restart and repopulation.
# timeout: 90
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/lvmetad.sh"
need_cmd socat

# command line as C: -V prints the version and exits 1, -h usage on stdout and exit 0
rc=0; out=$("$BIN/lvmetad" -V) || rc=$?
check [ $rc = 1 ]
check [ "$out" = "lvmetad version: 2.02.187(2) (2020-03-24)" ]
"$BIN/lvmetad" -h | grep -q '^Usage:' || fail "-h gives no usage"
"$BIN/lvmetad" -t abc -f -s "$TESTDIR/x" 2>/dev/null && fail "bad -t accepted"

start_lvmetad
check [ "$(cat "$PIDF")" = "$LVMETAD_PID" ]
check [ "$(printf 'request = "hello"\n' | send "$SOCK" | field protocol)" = lvmetad ]
check [ "$(ask 'request="get_global_info"' | field token)" = none ]

# population like pvscan --cache: 40 PVs in 8 VGs
bench populate 40 8 >/dev/null || fail "populate"
bench check 40 8 >/dev/null || fail "lookups after populate"
check [ "$(ask 'request="get_global_info"' | field token)" = "filter:0" ]
check [ "$("$BIN/lvmetactl" vg_list | grep -c 'name="vg')" = 8 ]
"$BIN/lvmetactl" vg_lookup_name vg3 | grep -q '^name="vg3"' || fail "lvmetactl vg_lookup_name"
# A reader that went away (`| true` closes the pipe before the dump arrives): exit 0, no panic.
"$BIN/lvmetactl" dump 2>"$TESTDIR/epipe.err" | true
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] && [ ! -s "$TESTDIR/epipe.err" ] || fail "lvmetactl dump | true: exit $rc: $(cat "$TESTDIR/epipe.err")"

# token mismatch: another filter, and a stale updater
r=$(ask $'request="vg_list"\ntoken="filter:999"\npid=5')
check [ "$(field response <<<"$r")" = token_mismatch ]
check [ "$(field expected <<<"$r")" = "filter:0" ]
check [ "$(field received <<<"$r")" = "filter:999" ]

# global invalidation
"$BIN/lvmetactl" set_global_invalid 1 | grep -q 'response "OK"' || fail "set_global_invalid"
ask 'request="vg_list"' | grep -q '^global_invalid {' || fail "vg_list lacks global_invalid"
ask 'request="vg_lookup"
name="vg1"' | grep -q '^global_invalid {' || fail "vg_lookup lacks global_invalid"
check [ "$(ask 'request="get_global_info"' | field global_invalid)" = 1 ]
"$BIN/lvmetactl" set_global_invalid 0 >/dev/null
ask 'request="pv_list"' | grep -q global_invalid && fail "global_invalid not cleared"

# VG invalidation until a vg_update with that seqno arrives
vgid=$(ask 'request="vg_lookup"
name="vg2"' | sed -n 's/^\tid="\(.*\)"$/\1/p' | head -1)
[ -n "$vgid" ] || fail "no vgid for vg2"
"$BIN/lvmetactl" set_vg_version "$vgid" - 5 | grep -q 'response "OK"' || fail set_vg_version
"$BIN/lvmetactl" vg_lookup_uuid "$vgid" | grep -q '^vg_invalid {' || fail "vg_invalid missing"
meta=$(ask 'request="vg_lookup"
name="vg2"' | sed -n '/^metadata {/,/^}/p' | sed 's/^\tseqno=3$/\tseqno=5/')
r=$(ask "request=\"vg_update\"
vgname=\"vg2\"
$meta")
check [ "$(field response <<<"$r")" = OK ]
ask 'request="vg_lookup"
name="vg2"' | grep -q vg_invalid && fail "vg_invalid stays after seqno 5 arrived"

# disable directly, then re-enable
"$BIN/lvmetactl" set_global_disable 1 >/dev/null
r=$(ask 'request="get_global_info"')
check [ "$(field global_disable <<<"$r")" = 1 ]
check [ "$(field disable_reason <<<"$r")" = "DIRECT," ]
ask $'request="set_global_info"\nglobal_disable=0' >/dev/null
check [ "$(ask 'request="get_global_info"' | field disable_reason)" = none ]

# lvmetad finds a duplicate PV itself (the same PVID on a second device) and disables
pv=$(ask 'request="pv_list"' | sed -n 's/^\t\tid="\(.*\)"$/\1/p' | head -1)
r=$(ask "request=\"pv_found\"
pvmeta {
device=99999
id=\"$pv\"
format=\"lvm2\"
}")
check [ "$(field reason <<<"$r")" = "Ignore duplicate PV" ]
check [ "$(ask 'request="get_global_info"' | field disable_reason)" = "DUPLICATES," ]
ask $'request="set_global_info"\nglobal_disable=0' >/dev/null

# input C exits on (or, unparsable, answers token_mismatch to): answered "failed", nothing lost
for bad in 'request="vg_update"
metadata {
id="X"
seqno=1
}' 'request="vg_update"
vgname="vgz"
metadata {
id="X"
seqno=0
}' 'this is { garbage'; do
    r=$(ask "$bad")
    check [ "$(field response <<<"$r")" = failed ]
done
kill -0 "$LVMETAD_PID" || fail "daemon died on bad input"
check [ "$("$BIN/lvmetactl" vg_list | grep -c 'name="vg')" = 8 ]
for i in 0 1 2 3 4 5 6 7; do
    r=$("$BIN/lvmetactl" vg_lookup_name "vg$i")
    check [ "$(field response <<<"$r")" = OK ]
    grep -q MISSING <<<"$r" && fail "vg$i lost PVs"
done

# restart: the cache is empty and the token "none" until repopulated
stop_lvmetad
[ -e "$SOCK" ] && fail "socket left behind"
[ -e "$PIDF" ] && fail "pidfile left behind"
start_lvmetad
check [ "$(ask 'request="get_global_info"' | field token)" = none ]
check [ "$(ask 'request="vg_list"' | grep -c 'name=')" = 0 ]
r=$(ask $'request="vg_list"\ntoken="filter:0"\npid=7')
check [ "$(field response <<<"$r")" = token_mismatch ]
bench populate 40 8 >/dev/null || fail "repopulate"
bench check 40 8 >/dev/null || fail "lookups after repopulation"
stop_lvmetad

# the socket and pidfile can come from the environment
LVM_LVMETAD_SOCKET=$TESTDIR/env.socket LVM_LVMETAD_PIDFILE=$TESTDIR/env.pid "$BIN/lvmetad" -f &
p=$!
at_exit "kill $p"
wait_for_socket "$TESTDIR/env.socket"
check [ "$(cat "$TESTDIR/env.pid")" = "$p" ]
kill $p
wait_gone $p || fail "env daemon did not stop"
echo "PASS"
