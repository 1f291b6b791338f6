#!/bin/bash
# Needs root (loop devices). `lvmetad-scan --cache` with devices named by number, as device
# events name them: MAJOR:MINOR of a present PV is scanned (not dropped), --major/--minor too, an
# absent device gets pv_gone, a non-PV changes nothing, garbage (7:, :1, a:b, huge numbers, a
# lone --major) is refused with a clear error and lvmetad's cache stays as it was. A single-device
# update that arrives while a full update holds the token waits for it and is then applied (the
# rest of the cache stays), instead of replacing the cache with its one device.
# timeout: 90
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/scan.sh"
need_loop_root socat

make_loop A 16M vgpv; make_loop B 16M orphan; make_loop C 16M notpv
lvm_c pvcreate -q "$A" "$B" >/dev/null || fail pvcreate
lvm_c vgcreate -q vgdevno "$A" >/dev/null || fail vgcreate
write_scan_conf "$TESTDIR/lvm.conf"
start_lvmetad
scan() { "$BIN/lvmetad-scan" --cache -s "$SOCK" --config "$TESTDIR/lvm.conf" "$@"; }
# ask NAME [TOKEN [BODY]]: one request, as pid 4242.
ask() { printf 'request="%s"\ntoken="%s"\npid=4242\ncmd="fake"\nupdate_timeout=30\n%s' "$1" "${2:-skip}" "${3:-}" | send "$SOCK"; }
# The cached PVs as "uuid device" lines, sorted.
cached() {
    ask pv_list | awk -F= '/^\t\tdevice=/ {dev = $2} /^\t\tid=/ {id = $2} /^\t}/ {print id, dev}' | sort
}
numbers() { local d; d=$(stat -L -c '%t:%T' "$1"); printf '%d:%d' "0x${d%:*}" "0x${d#*:}"; }
devt() { local ma=${1%:*} mi=${1#*:}; echo $(((mi & 0xff) | (ma << 8) | ((mi & ~0xff) << 12))); }
expect_cache() { # WHAT EXPECTED-FILE
    cached >"$TESTDIR/now"
    diff -u "$2" "$TESTDIR/now" >&2 || fail "$1: cache differs"
}

scan 2>"$TESTDIR/err" || fail "full scan: $(cat "$TESTDIR/err")"
cached >"$TESTDIR/full"
[ "$(wc -l <"$TESTDIR/full")" = 2 ] || fail "expected 2 PVs cached: $(cat "$TESTDIR/full")"
NA=$(numbers "$A"); NB=$(numbers "$B"); NC=$(numbers "$C")
TOKEN=$(global_info | sed -n 's/^token = "\(.*\)"$/\1/p')

# Present PV by number: scanned and sent again (pv_found), not reported gone.
scan "$NA" 2>"$TESTDIR/err" || fail "$NA: $(cat "$TESTDIR/err")"
grep -q "1 PV(s) sent to lvmetad, 0 gone" "$TESTDIR/err" || fail "$NA not scanned: $(cat "$TESTDIR/err")"
expect_cache "present $NA" "$TESTDIR/full"
scan --major "${NB%:*}" --minor "${NB#*:}" 2>"$TESTDIR/err" || fail "--major/--minor: $(cat "$TESTDIR/err")"
grep -q "1 PV(s) sent to lvmetad, 0 gone" "$TESTDIR/err" || fail "--major/--minor not scanned: $(cat "$TESTDIR/err")"
expect_cache "present --major/--minor" "$TESTDIR/full"
note "present devices by number: scanned"

# A non-PV by number: pv_gone of a device lvmetad does not know; nothing else changes.
scan "$NC" 2>"$TESTDIR/err" || fail "$NC: $(cat "$TESTDIR/err")"
grep -q "0 PV(s) sent to lvmetad, 1 gone" "$TESTDIR/err" || fail "non-PV: $(cat "$TESTDIR/err")"
expect_cache "non-PV $NC" "$TESTDIR/full"

# Garbage and out-of-range numbers: exit 3 or 5 with a clear message, nothing sent.
bad() { # EXPECTED-MESSAGE ARGS...
    local want=$1 rc; shift
    rc=0; scan "$@" >"$TESTDIR/out" 2>&1 || rc=$?
    [ $rc = 3 ] || [ $rc = 5 ] || fail "$* exited $rc: $(cat "$TESTDIR/out")"
    grep -q -- "$want" "$TESTDIR/out" || fail "$*: no '$want' in: $(cat "$TESTDIR/out")"
    expect_cache "after $*" "$TESTDIR/full"
}
bad "not a device path nor MAJOR:MINOR" 7:
bad "not a device path nor MAJOR:MINOR" :1
bad "not a device path nor MAJOR:MINOR" a:b
bad "not a device path nor MAJOR:MINOR" 7:1:2
bad "major 4096 is out of range" 4096:0
bad "minor 1048576 is out of range" 7:1048576
bad "major 99999999999999999999 is out of range" 99999999999999999999:1
bad "--major and --minor go together" --major 7
bad "not a device path nor MAJOR:MINOR" --major 7 --minor x
# One bad argument among good ones: nothing at all is sent.
bad "not a device path nor MAJOR:MINOR" "$NA" a:b
note "garbage refused, cache unchanged"

# Absent device by number: pv_gone. A PV lvmetad was told of on 4094:7, a number no kernel
# device has.
GHOST=$(devt 4094:7)
ask pv_found "$TOKEN" "$(printf 'pvmeta {\n\tdevice=%s\n\tdev_size=16777216\n\tformat="lvm2"\n\tlabel_sector=1\n\tid="ghost0-0000-0000-0000-0000-0000-000000"\n}\n' "$GHOST")" \
    | grep -q 'response = "OK"' || fail "ghost pv_found"
cached | grep -q " $GHOST\$" || fail "ghost not cached"
scan 4094:7 2>"$TESTDIR/err" || fail "4094:7: $(cat "$TESTDIR/err")"
grep -q "0 PV(s) sent to lvmetad, 1 gone" "$TESTDIR/err" || fail "absent: $(cat "$TESTDIR/err")"
expect_cache "absent 4094:7" "$TESTDIR/full"
note "absent 4094:7: pv_gone"

# A single-device update during a full update: another updater (this shell, pid 4242) holds
# "update in progress" and has cleared the cache; the scanner of $NA must wait, not start its own
# repopulation from $NA alone; the updater sends B and ends; then $NA is applied on top.
ask token_update "update in progress" | grep -q 'response = "OK"' || fail "begin update"
ask pv_clear_all "update in progress" | grep -q 'response = "OK"' || fail "clear"
scan "$NA" 2>"$TESTDIR/err" &
waiter=$!
sleep 1
kill -0 $waiter 2>/dev/null || fail "the device update did not wait for the full update: $(cat "$TESTDIR/err")"
[ -z "$(cached)" ] || fail "the device update wrote during the full update: $(cached)"
# The updater's view of B (what a full scan sends, trimmed), then the end of its update.
BID=$(awk -v d="$(devt "$NB")" '$2 == d {print $1}' "$TESTDIR/full")
[ -n "$BID" ] || fail "B not in the first full cache"
ask pv_found "update in progress" "$(printf 'pvmeta {\n\tdevice=%s\n\tdev_size=16777216\n\tformat="lvm2"\n\tlabel_sector=1\n\tid=%s\n}\n' "$(devt "$NB")" "$BID")" \
    | grep -q 'response = "OK"' || fail "the updater's pv_found of B"
ask token_update "$TOKEN" | grep -q 'response = "OK"' || fail "end update"
wait $waiter || fail "the waiting device update failed: $(cat "$TESTDIR/err")"
grep -q "1 PV(s) sent to lvmetad, 0 gone" "$TESTDIR/err" || fail "after waiting: $(cat "$TESTDIR/err")"
cached >"$TESTDIR/now"
[ "$(wc -l <"$TESTDIR/now")" = 2 ] || fail "expected B (from the full update) and A (from the event): $(cat "$TESTDIR/now")"
grep -q " $(devt "$NA")\$" "$TESTDIR/now" || fail "A missing: $(cat "$TESTDIR/now")"
note "a device update during a full update waited, then added its device to the full update's cache"

# No lvmetad: a clear error, exit 5.
rc=0; "$BIN/lvmetad-scan" --cache -s "$TESTDIR/nosuch.socket" "$NA" >"$TESTDIR/out" 2>&1 || rc=$?
[ $rc = 5 ] || fail "no lvmetad: exit $rc"
grep -q "nosuch.socket" "$TESTDIR/out" || fail "no lvmetad: $(cat "$TESTDIR/out")"
exit 0
