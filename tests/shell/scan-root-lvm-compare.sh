#!/bin/bash
# Needs root (loop devices). PVs, VGs and LVs written by the real lvm2 2.03: lvmetad-scan --json
# reports the same PV uuids and sizes, VG names, uuids, seqno and extent counts, LV names, uuids
# and segments as `lvm pvs/vgs/lvs --reportformat json`. Covers two metadata copies,
# pvmetadatacopies 0, a bootloader area, striped and multi-segment LVs, an orphan, and a metadata
# area whose committed text wraps around the end of its circular buffer.
# timeout: 60
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/scan.sh"
need_loop_root jq

make_loop A 64M a; make_loop B 64M b; make_loop C 64M c; make_loop D 32M d; make_loop E 16M e
lvm_c pvcreate -q --pvmetadatacopies 2 "$A" >/dev/null || fail "pvcreate 2 copies"
lvm_c pvcreate -q --pvmetadatacopies 0 "$B" >/dev/null || fail "pvcreate 0 copies"
lvm_c pvcreate -q --bootloaderareasize 2m "$C" >/dev/null || fail "pvcreate bootloader"
lvm_c pvcreate -q --metadatasize 32k --dataalignment 64k "$D" >/dev/null || fail "pvcreate small mda"
lvm_c pvcreate -q "$E" >/dev/null || fail "pvcreate orphan"
lvm_c vgcreate -q -s 4m vg1 "$A" "$B" "$C" >/dev/null || fail vgcreate
lvm_c lvcreate -q -Zn -n lin -L 12m vg1 "$A" >/dev/null || fail lvcreate
lvm_c lvcreate -q -Zn -n str -i3 -I64k -L 24m vg1 >/dev/null || fail "lvcreate striped"
lvm_c lvcreate -q -Zn -n small -L 4m vg1 "$C" >/dev/null || fail lvcreate
lvm_c lvextend -q -L +8m vg1/lin "$B" >/dev/null || fail lvextend

# Many small changes on a 60 KiB metadata area until the committed copy straddles its end.
lvm_c vgcreate -q -s 1m vgw "$D" >/dev/null || fail "vgcreate vgw"
wrapped=0
for i in $(seq 1 40); do
    lvm_c lvcreate -q -Zn -n "lv_with_a_long_name_$i" -L 1m vgw >/dev/null || fail "lvcreate $i"
    read -r mda_size off size < <(od -An -t u8 -j $((4096 + 32)) -N 24 "$D" | xargs)
    if [ $((off + size)) -gt "$mda_size" ]; then wrapped=$i; break; fi
done
[ $wrapped -gt 0 ] || fail "metadata never wrapped"
note "metadata text wraps after $wrapped changes (offset $off size $size in $mda_size)"

compare_with_lvm "$A" "$B" "$C" "$D" "$E"

# One more change moves the copy to the start of the buffer; still the same answers.
lvm_c lvremove -q -y vgw/lv_with_a_long_name_1 >/dev/null || fail lvremove
compare_with_lvm "$A" "$B" "$C" "$D" "$E"
exit 0
