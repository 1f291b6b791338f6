# Helpers for the scanner's shell tests (tests/shell/scan-*.sh). Source after common.sh.
# Gives: make_loop VAR SIZE NAME (a loop device; detached and removed on exit), lvm_c (lvm with
# activation off, no devices file, and a global_filter of only our loop devices), norm_* jq filters
# to compare lvm's JSON report with lvmetad-scan --json, start_lvmetad, and need_loop_root.

# need_loop_root [CMD...]: the shared preamble of the root tests on loop devices: SKIP unless
# root, with lvm, losetup and each CMD, a built lvmetad-scan, and loop devices.
need_loop_root() {
    need_root
    need_cmd lvm losetup "$@"
    [ -x "$BIN/lvmetad-scan" ] || skip "lvmetad-scan not built"
    [ -e /dev/loop-control ] || skip "no loop devices"
}

SCAN_LOOPS=()

# make_loop VAR SIZE NAME: sparse backing file TESTDIR/NAME.img attached to a free loop device,
# whose name is stored in VAR (not printed: a subshell would lose the cleanup hook).
make_loop() {
    local f=$TESTDIR/$3.img dev
    truncate -s "$2" "$f"
    dev=$(losetup -f --show "$f") || fail "losetup failed"
    at_exit "losetup -d $dev"
    SCAN_LOOPS+=("$dev")
    printf -v "$1" '%s' "$dev"
}

# The lvm.conf fragment accepting only our loop devices.
scan_filter() {
    local d out=""
    for d in "${SCAN_LOOPS[@]}"; do out="$out\"a|^$d\$|\", "; done
    echo "[ $out\"r|.*|\" ]"
}

# lvm_c ARGS...: lvm limited to our loop devices, without device-mapper; its noise dropped.
lvm_c() {
    lvm "$1" --config "global{activation=0} devices{use_devicesfile=0 obtain_device_list_from_udev=0 global_filter=$(scan_filter)}" "${@:2}" \
        2> >(grep -vE 'leaked on lvm|device-mapper|mapper/control|Incompatible libdevmapper|Activation disabled|not zeroed' >&2)
}

# write_scan_conf FILE: an lvm.conf for lvmetad-scan with the same global_filter.
write_scan_conf() {
    printf 'devices {\n\tglobal_filter = %s\n}\n' "$(scan_filter)" >"$1"
}

# Normalised lvm reports (jq over `lvm ... --reportformat json --units b --nosuffix`).
NORM_LVM_PVS='[.report[0].pv[] | {pv_name, pv_uuid, vg_name, pv_size: (.pv_size|tonumber),
  dev_size: (.dev_size|tonumber), pe_start: (.pe_start|tonumber), pv_pe_count: (.pv_pe_count|tonumber),
  pv_pe_alloc_count: (.pv_pe_alloc_count|tonumber), pv_mda_count: (.pv_mda_count|tonumber),
  pv_ba_start: (.pv_ba_start|tonumber), pv_ba_size: (.pv_ba_size|tonumber)}] | sort_by(.pv_name)'
NORM_LVM_VGS='[.report[0].vg[] | {vg_name, vg_uuid, vg_seqno: (.vg_seqno|tonumber),
  vg_extent_size: (.vg_extent_size|tonumber), vg_extent_count: (.vg_extent_count|tonumber),
  vg_free_count: (.vg_free_count|tonumber), pv_count: (.pv_count|tonumber), lv_count: (.lv_count|tonumber)}] | sort_by(.vg_name)'
NORM_LVM_SEGS='[.report[0].seg[] | {vg_name, lv_name: (.lv_name|ltrimstr("[")|rtrimstr("]")), lv_uuid,
  seg_start_pe: (.seg_start_pe|tonumber), seg_size_pe: (.seg_size_pe|tonumber), segtype,
  stripes: (.stripes|tonumber), stripe_size: (.stripe_size|tonumber), devices}] | sort_by(.vg_name, .lv_name, .seg_start_pe)'
NORM_OUR_PVS='.pvs | sort_by(.pv_name)'
NORM_OUR_VGS='.vgs | sort_by(.vg_name)'
NORM_OUR_SEGS='[.lvs[] | . as $lv | .segments[] | {vg_name: $lv.vg_name, lv_name: $lv.lv_name, lv_uuid: $lv.lv_uuid,
  seg_start_pe, seg_size_pe, segtype, stripes, stripe_size, devices}] | sort_by(.vg_name, .lv_name, .seg_start_pe)'
LVM_PV_FIELDS=pv_name,vg_name,pv_uuid,pv_size,dev_size,pe_start,pv_pe_count,pv_pe_alloc_count,pv_mda_count,pv_ba_start,pv_ba_size
LVM_VG_FIELDS=vg_name,vg_uuid,vg_seqno,vg_extent_size,vg_extent_count,vg_free_count,pv_count,lv_count
LVM_SEG_FIELDS=vg_name,lv_name,lv_uuid,seg_start_pe,seg_size_pe,segtype,stripes,stripe_size,devices

# same_json WHAT A B: compare two JSON documents, show a diff and fail if they differ.
same_json() {
    if ! diff -u <(echo "$2" | jq -S .) <(echo "$3" | jq -S .) >"$TESTDIR/diff.$1"; then
        cat "$TESTDIR/diff.$1" >&2
        fail "$1: lvmetad-scan and lvm disagree"
    fi
    note "$1 agree"
}

# compare_with_lvm DEV...: lvmetad-scan --json over DEVs against lvm pvs/vgs/lvs on the same devices.
compare_with_lvm() {
    local ours
    ours=$("$BIN/lvmetad-scan" --json "$@") || fail "lvmetad-scan failed"
    same_json PVs "$(lvm_c pvs -a --reportformat json --units b --nosuffix -o $LVM_PV_FIELDS | jq "$NORM_LVM_PVS")" \
        "$(echo "$ours" | jq "$NORM_OUR_PVS")"
    same_json VGs "$(lvm_c vgs --reportformat json --units b --nosuffix -o $LVM_VG_FIELDS | jq "$NORM_LVM_VGS")" \
        "$(echo "$ours" | jq "$NORM_OUR_VGS")"
    same_json segments "$(lvm_c lvs -a --segments --reportformat json --units b --nosuffix -o $LVM_SEG_FIELDS | jq "$NORM_LVM_SEGS")" \
        "$(echo "$ours" | jq "$NORM_OUR_SEGS")"
}

# start_lvmetad: our lvmetad in the foreground on a private socket; sets SOCK and LVMETAD_PID.
start_lvmetad() {
    [ -x "$BIN/lvmetad" ] || fail "lvmetad not built at $BIN/lvmetad"
    SOCK=$TESTDIR/lvmetad.socket
    "$BIN/lvmetad" -f -s "$SOCK" -p "$TESTDIR/lvmetad.pid" >"$TESTDIR/lvmetad.log" 2>&1 &
    LVMETAD_PID=$!
    at_exit "kill $LVMETAD_PID"
    local i
    for ((i = 0; i < 100; i++)); do
        [ -S "$SOCK" ] && return 0
        kill -0 "$LVMETAD_PID" 2>/dev/null || fail "lvmetad died at start: $(head -3 "$TESTDIR/lvmetad.log")"
        sleep 0.05
    done
    fail "lvmetad socket did not appear"
}

# global_info: get_global_info as key=value lines.
global_info() {
    printf 'request="get_global_info"\ntoken="skip"\npid=1\ncmd="test"\n' | send "$SOCK"
}
