#!/bin/bash
# Needs root (loop devices). A dd-cloned PV makes `lvmetad-scan --cache` disable our lvmetad with
# reason DUPLICATES (get_global_info: global_disable=1); removing the clone and scanning again
# re-enables it, with the token of the global_filter installed (seeds/004 case 2); a single-device
# update with the clone makes lvmetad disable itself (case 3).
# timeout: 60
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/scan.sh"
need_loop_root socat

make_loop A 32M orig; make_loop B 32M clone
lvm_c pvcreate -q "$A" >/dev/null || fail pvcreate
lvm_c vgcreate -q vgdup "$A" >/dev/null || fail vgcreate
lvm_c lvcreate -q -Zn -n lv0 -L 8m vgdup >/dev/null || fail lvcreate
dd if="$A" of="$B" bs=1M status=none || fail "dd clone"
write_scan_conf "$TESTDIR/lvm.conf"
start_lvmetad

# Case 2: a full rescan sees the duplicate and disables lvmetad.
"$BIN/lvmetad-scan" --cache -s "$SOCK" --config "$TESTDIR/lvm.conf" 2>"$TESTDIR/err" \
    || fail "scan failed: $(cat "$TESTDIR/err")"
grep -q "duplicate PVs" "$TESTDIR/err" || fail "no duplicate warning: $(cat "$TESTDIR/err")"
info=$(global_info)
echo "$info" | grep -q 'global_disable = 1' || fail "not disabled: $info"
echo "$info" | grep -q 'disable_reason = ".*DUPLICATES' || fail "reason: $info"
echo "$info" | grep -q 'token = "filter:[0-9]*"' || fail "filter token not installed: $info"
echo "$info" | grep -q 'token = "filter:0"' && fail "token ignores the global_filter: $info"
# The VG was still cached from one of the two devices.
"$BIN/lvmetad-scan" --show -s "$SOCK" | grep -qw lv0 || fail "VG not cached"

# Wipe the clone's label; a clean full rescan re-enables lvmetad.
dd if=/dev/zero of="$B" bs=1M count=1 oflag=direct status=none || fail "wipe clone"
"$BIN/lvmetad-scan" --cache -s "$SOCK" --config "$TESTDIR/lvm.conf" 2>"$TESTDIR/err" \
    || fail "rescan failed: $(cat "$TESTDIR/err")"
info=$(global_info)
echo "$info" | grep -q 'global_disable = 0' || fail "still disabled: $info"
"$BIN/lvmetad-scan" --show --json -s "$SOCK" >"$TESTDIR/show.json" || fail "show failed"
[ "$(jq -r '.vgs[0].vg_name' "$TESTDIR/show.json")" = vgdup ] || fail "VG lost: $(cat "$TESTDIR/show.json")"
[ "$(jq '.pvs | length' "$TESTDIR/show.json")" = 1 ] || fail "PV count: $(cat "$TESTDIR/show.json")"

# Single-device update with a matching token keeps lvmetad enabled.
"$BIN/lvmetad-scan" --cache -s "$SOCK" --config "$TESTDIR/lvm.conf" "$A" 2>"$TESTDIR/err" \
    || fail "device update failed: $(cat "$TESTDIR/err")"
global_info | grep -q 'global_disable = 0' || fail "disabled by a device update"

# Case 3: the clone written again and announced by a single-device update with the token
# matching: lvmetad refuses it and disables itself.
dd if="$A" of="$B" bs=1M oflag=direct status=none || fail "dd clone again"
B2=$B
rc=0; "$BIN/lvmetad-scan" --cache -s "$SOCK" --config "$TESTDIR/lvm.conf" "$B2" 2>"$TESTDIR/err" || rc=$?
[ $rc = 5 ] || fail "clone update exit $rc: $(cat "$TESTDIR/err")"
grep -q "duplicate" "$TESTDIR/err" || fail "no refusal shown: $(cat "$TESTDIR/err")"
info=$(global_info)
echo "$info" | grep -q 'global_disable = 1' || fail "lvmetad did not disable itself: $info"
echo "$info" | grep -q 'DUPLICATES' || fail "reason: $info"
exit 0
