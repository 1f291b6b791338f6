#!/bin/bash
# Needs root (loop devices). lvmetad checks its cache against the disks: the real lvm 2.03 (which
# never talks to lvmetad) changes PVs and VGs behind its back, and the next vg_lookup, pv_lookup,
# pv_list or vg_list says so (vg_invalid {} when a VG's metadata moved, global_invalid {} when the
# change is structural) while unchanged VGs stay valid. A write made through lvmetad (set_vg_info,
# commit, vg_update) stays valid. With --no-verify the same outside writes give C's stale replies.
# Bad disks: bad mda checksum, device truncated below its mda: invalid, no crash.
# timeout: 240
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/scan.sh"
need_loop_root socat

make_loop A 32M a; make_loop B 32M b; make_loop U 32M u; make_loop O 32M o
write_scan_conf "$TESTDIR/lvm.conf"

req() { # req NAME [key=value...]: one request with token "skip"
    local r=$1; shift
    { printf 'request="%s"\ntoken="skip"\npid=1\ncmd="verify-test"\n' "$r"; printf '%s\n' "$@"; } | send "$SOCK"
}
marks() { # marks REPLY: which markers a reply carries ("vg global", "vg", "global" or "none")
    local m=""
    grep -q '^vg_invalid' <<<"$1" && m="vg"
    grep -q '^global_invalid' <<<"$1" && m="${m:+$m }global"
    echo "${m:-none}"
}
expect() { # expect WHAT WANT REPLY
    local got; got=$(marks "$3")
    [ "$got" = "$2" ] || fail "$1: expected markers '$2', got '$got': $(head -c 600 <<<"$3")"
    note "$1: $got"
}
repopulate() {
    "$BIN/lvmetad-scan" --cache -s "$SOCK" --config "$TESTDIR/lvm.conf" 2>"$TESTDIR/scan.err" \
        || fail "lvmetad-scan --cache: $(cat "$TESTDIR/scan.err")"
}
pvid() { lvm_c pvs --noheadings -o pv_uuid "$1" | tr -d ' '; }
fresh_vgs() { # (re)create vgS on A+B with LV a, vgU on U with LV u, O an orphan PV
    lvm_c vgremove -q -f vgS vgR vgU vgN >/dev/null 2>&1 || true # some do not exist yet
    lvm_c pvremove -q -ff -y "$A" "$B" "$U" "$O" >/dev/null 2>&1 || true
    lvm_c pvcreate -q "$A" "$B" "$U" "$O" >/dev/null || fail pvcreate
    lvm_c vgcreate -q vgS "$A" "$B" >/dev/null || fail "vgcreate vgS"
    lvm_c vgcreate -q vgU "$U" >/dev/null || fail "vgcreate vgU"
    lvm_c lvcreate -q -Zn -n a -L 4m vgS >/dev/null || fail "lvcreate a"
    lvm_c lvcreate -q -Zn -n u -L 4m vgU >/dev/null || fail "lvcreate u"
}
both_valid() { # after a repopulation every lookup is clean
    expect "$1: vgS before" none "$(req vg_lookup name=\"vgS\")"
    expect "$1: vgU before" none "$(req vg_lookup name=\"vgU\")"
}

# ---- verification off: C's stale replies -----------------------------------------------------
start_lvmetad_opts() {
    SOCK=$TESTDIR/lvmetad.socket
    "$BIN/lvmetad" -f -s "$SOCK" -p "$TESTDIR/lvmetad.pid" "$@" >"$TESTDIR/lvmetad.log" 2>&1 &
    LVMETAD_PID=$!
    at_exit "kill $LVMETAD_PID 2>/dev/null"
    wait_for_socket "$SOCK" || fail "lvmetad did not start: $(cat "$TESTDIR/lvmetad.log")"
}
fresh_vgs
start_lvmetad_opts --no-verify
repopulate
both_valid off
lvm_c lvcreate -q -Zn -n b -L 4m vgS >/dev/null || fail "lvcreate b"
r=$(req vg_lookup name=\"vgS\")
expect "off: lvcreate outside" none "$r"
grep -q 'b {' <<<"$r" && fail "off: lvmetad knows about b"
dd if=/dev/zero of="$A" bs=512 seek=1 count=1 conv=notrunc status=none
expect "off: wiped label" none "$(req pv_list)"
req dump | grep -q '# VERIFICATION' && fail "off: dump has a verification section"
kill "$LVMETAD_PID"; wait "$LVMETAD_PID" 2>/dev/null

# ---- verification on ---------------------------------------------------------------------------
fresh_vgs
start_lvmetad_opts
repopulate
both_valid on

lvm_c lvcreate -q -Zn -n b -L 4m vgS >/dev/null || fail "lvcreate b"
expect "lvcreate outside" vg "$(req vg_lookup name=\"vgS\")"
expect "lvcreate outside, other VG" none "$(req vg_lookup name=\"vgU\")"
expect "lvcreate outside, vg_list" none "$(req vg_list)"
repopulate; both_valid lvextend
lvm_c lvextend -q -L 8m vgS/b >/dev/null || fail lvextend
expect "lvextend outside" vg "$(req vg_lookup name=\"vgS\")"
repopulate; both_valid lvremove
lvm_c vgcfgbackup -q -f "$TESTDIR/vgS.backup" vgS >/dev/null || fail vgcfgbackup
lvm_c lvremove -q -f vgS/b >/dev/null || fail lvremove
expect "lvremove outside" vg "$(req vg_lookup name=\"vgS\")"
repopulate; both_valid vgcfgrestore
lvm_c vgcfgrestore -q -f "$TESTDIR/vgS.backup" vgS >/dev/null 2>&1 || fail vgcfgrestore
expect "vgcfgrestore of an older backup" vg "$(req vg_lookup name=\"vgS\")"
expect "vgcfgrestore, other VG" none "$(req vg_lookup name=\"vgU\")"

# A write through lvmetad, as 2.02 tools make it: set_vg_info, commit, vg_update.
repopulate; both_valid write-through
seq=$(lvm_c vgs --noheadings -o vg_seqno vgS | tr -d ' ')
vgid=$(lvm_c vgs --noheadings -o vg_uuid vgS | tr -d ' ')
req set_vg_info name=\"vgS\" uuid=\""$vgid"\" version=$((seq + 1)) >/dev/null
lvm_c lvcreate -q -Zn -n c -L 4m vgS >/dev/null || fail "lvcreate c"
lvm_c vgcfgbackup -q -f "$TESTDIR/vgS.now" vgS >/dev/null || fail vgcfgbackup
body=$(sed -n '/^vgS {/,$p' "$TESTDIR/vgS.now" | sed '1s/^vgS {/metadata {/')
r=$(req vg_update vgname=\"vgS\" "$body")
grep -q 'response = "OK"\|response="OK"' <<<"$r" || fail "vg_update refused: $r"
expect "after a write through lvmetad" none "$(req vg_lookup name=\"vgS\")"
expect "after a write through lvmetad (again)" none "$(req vg_lookup name=\"vgS\")"

# Structural changes.
repopulate; both_valid vgrename
lvm_c vgrename -q vgS vgR >/dev/null || fail vgrename
expect "vgrename outside" "vg global" "$(req vg_lookup name=\"vgS\")"
expect "vgrename, other VG" none "$(req vg_lookup name=\"vgU\")"
info=$(global_info)
grep -q 'token = "none"' <<<"$info" || fail "token not dropped after a structural change: $info"
lvm_c vgrename -q vgR vgS >/dev/null || fail "vgrename back"

repopulate; both_valid vgextend
lvm_c vgextend -q vgS "$O" >/dev/null || fail vgextend
expect "vgextend outside" "vg global" "$(req vg_lookup name=\"vgS\")"
repopulate; both_valid vgreduce
lvm_c vgreduce -q vgS "$O" >/dev/null || fail vgreduce
expect "vgreduce outside" "vg global" "$(req vg_lookup name=\"vgS\")"

repopulate; both_valid "new VG on an orphan"
lvm_c vgcreate -q vgN "$O" >/dev/null || fail "vgcreate vgN"
expect "new VG on an orphan PV: pv_list" global "$(req pv_list)"
expect "new VG on an orphan PV: vg_list" global "$(req vg_list)"
expect "new VG on an orphan PV: pv_lookup" global "$(req pv_lookup uuid=\""$(pvid "$O")"\")"
expect "new VG, other VG" none "$(req vg_lookup name=\"vgU\")"

repopulate
expect "vgN cached" none "$(req vg_lookup name=\"vgN\")"
lvm_c vgremove -q -f vgN >/dev/null || fail "vgremove vgN"
expect "vgremove outside" "vg global" "$(req vg_lookup name=\"vgN\")"
expect "vgremove outside: vg_list" global "$(req vg_list)"

repopulate
opv=$(pvid "$O")
expect "orphan before pvremove" none "$(req pv_lookup uuid=\""$opv"\")"
lvm_c pvremove -q "$O" >/dev/null || fail pvremove
expect "pvremove outside: pv_lookup" global "$(req pv_lookup uuid=\""$opv"\")"
expect "pvremove outside: pv_list" global "$(req pv_list)"
lvm_c pvcreate -q "$O" >/dev/null || fail "pvcreate O again"

repopulate; both_valid "wiped label"
# A rescan that reports every PV at the device it is bound to reads no label again; the checks
# below still read them, so the wipe that follows is found all the same.
reads() { req dump | sed -n 's/^\tdisk_reads=//p'; }
r0=$(reads); repopulate; r1=$(reads)
[ -n "$r0" ] && [ "$r0" = "$r1" ] || fail "a rescan of bound PVs read labels again: $r0 -> $r1 disk reads"
note "rescan of bound PVs: no binding reads ($r0 -> $r1)"
dd if=/dev/zero of="$A" bs=512 seek=1 count=1 conv=notrunc status=none
expect "wiped label: vg_lookup" "vg global" "$(req vg_lookup name=\"vgS\")"
expect "wiped label: pv_list" global "$(req pv_list)"
expect "wiped label, other VG" none "$(req vg_lookup name=\"vgU\")"


# Bad disks: a bad mda header checksum, a device truncated below its metadata area.
repopulate
expect "vgU before damage" none "$(req vg_lookup name=\"vgU\")"
printf 'X' | dd of="$U" bs=1 seek=$((4096 + 200)) conv=notrunc status=none
expect "bad mda header checksum" vg "$(req vg_lookup name=\"vgU\")"
truncate -s 2048 "$TESTDIR/u.img"; losetup -c "$U" || fail "losetup -c"
expect "truncated below the mda" vg "$(req vg_lookup name=\"vgU\")"
expect "truncated: pv_list" global "$(req pv_list)"

d=$(req dump)
grep -q '# VERIFICATION' <<<"$d" || fail "dump has no verification section"
for k in stale_detected structural_detected; do
    n=$(sed -n "s/^\t$k=//p" <<<"$d")
    [ "${n:-0}" -gt 0 ] || fail "dump: $k is ${n:-missing}: $d"
done
grep -q 'result="fresh"\|result="stale"' <<<"$d" || fail "dump: no per-VG result"
kill -0 "$LVMETAD_PID" || fail "lvmetad died"
note "all outside changes were reported"

# A fresh daemon answers its first scan's pv_found without reading labels; its binder reads them
# once the reports pause, by itself: a label wiped after that, before any lookup or dump, is
# found as structural, not taken for a PV whose label was never seen.
truncate -s 0 "$TESTDIR/u.img"; truncate -s 32M "$TESTDIR/u.img"; losetup -c "$U" || fail "losetup -c"
fresh_vgs
kill "$LVMETAD_PID"; wait "$LVMETAD_PID" 2>/dev/null
start_lvmetad_opts
repopulate
sleep 0.5
dd if=/dev/zero of="$A" bs=512 seek=1 count=1 conv=notrunc status=none
expect "wiped after a first scan, no lookup before" "vg global" "$(req vg_lookup name=\"vgS\")"
