#!/bin/bash
# lvmetad-scan reads the bundled sample PV images (real PVs written by lvm2 2.03: two metadata
# copies, a bootloader area, striped and multi-segment LVs, an orphan) and reports what lvm2
# reported for them, also after a round trip through our lvmetad (--cache, then --show); crafted
# damage to a copy is refused with an error, not a crash. No root.
# timeout: 30
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/scan.sh"
need_cmd jq xz socat
[ -x "$BIN/lvmetad-scan" ] || skip "lvmetad-scan not built"

D=$TOP/tests/data/pv-images
for i in 1 2 3 4; do xz -dc "$D/pv$i.img.xz" | cp --sparse=always /dev/stdin "$TESTDIR/pv$i.img"; done
cd "$TESTDIR" || fail "cd"
ours=$("$BIN/lvmetad-scan" --json pv1.img pv2.img pv3.img pv4.img) || fail "lvmetad-scan failed"
same_json PVs "$(jq "$NORM_LVM_PVS" "$D/expected-pvs.json")" "$(echo "$ours" | jq "$NORM_OUR_PVS")"
same_json VGs "$(jq "$NORM_LVM_VGS" "$D/expected-vgs.json")" "$(echo "$ours" | jq "$NORM_OUR_VGS")"
same_json segments "$(jq "$NORM_LVM_SEGS" "$D/expected-segs.json")" "$(echo "$ours" | jq "$NORM_OUR_SEGS")"

# The table form names every VG and LV.
table=$("$BIN/lvmetad-scan" pv1.img pv2.img pv3.img pv4.img) || fail "table form failed"
for w in vg_sample vg_other linear striped data logs; do
    echo "$table" | grep -qw "$w" || fail "table lacks $w"
done

# A reader that goes away early (`| true` closes the pipe before the scan is done) ends the
# scanner quietly with status 0: no panic on EPIPE. Three tries (the race goes the same way).
for form in "" --json; do
    for _ in 1 2 3; do
        # shellcheck disable=SC2086
        "$BIN/lvmetad-scan" $form pv1.img pv2.img pv3.img pv4.img 2>"$TESTDIR/epipe.err" | true
        rc=${PIPESTATUS[0]}
        [ "$rc" = 0 ] && [ ! -s "$TESTDIR/epipe.err" ] \
            || fail "lvmetad-scan $form into a closed pipe: status $rc, stderr: $(head -c 300 "$TESTDIR/epipe.err")"
    done
done

# Through our lvmetad (no root needed): --cache fills it, --show reads back the same answers.
if [ -x "$BIN/lvmetad" ]; then
    start_lvmetad
    # A fresh lvmetad gets a full repopulation, which reads /dev too: keep it to the images.
    printf 'devices {\n\tglobal_filter = [ "r|^/dev/|" ]\n}\n' >images.conf
    "$BIN/lvmetad-scan" --cache -s "$SOCK" --config images.conf pv1.img pv2.img pv3.img pv4.img 2>err \
        || fail "--cache: $(cat err)"
    grep -q "4 PV(s) sent" err || fail "not all PVs sent: $(cat err)"
    shown=$("$BIN/lvmetad-scan" --show --json -s "$SOCK" pv1.img pv2.img pv3.img pv4.img) || fail "--show failed"
    same_json "cached PVs" "$(jq "$NORM_LVM_PVS" "$D/expected-pvs.json")" "$(echo "$shown" | jq "$NORM_OUR_PVS")"
    same_json "cached VGs" "$(jq "$NORM_LVM_VGS" "$D/expected-vgs.json")" "$(echo "$shown" | jq "$NORM_OUR_VGS")"
    same_json "cached segments" "$(jq "$NORM_LVM_SEGS" "$D/expected-segs.json")" "$(echo "$shown" | jq "$NORM_OUR_SEGS")"
    global_info | grep -q 'token = "filter:[0-9]*"' || fail "token not installed: $(global_info)"
fi

# Damage: flip a byte inside pv1's first metadata text; the second copy (end of device) still
# gives the VG, and the damage is reported.
cp --sparse=always pv1.img bad.img
text_at=$(od -An -t u8 -j $((4096 + 40)) -N 8 pv1.img | tr -d ' ')
printf '\xff' | dd of=bad.img bs=1 seek=$((4096 + text_at + 10)) conv=notrunc status=none
out=$("$BIN/lvmetad-scan" --json bad.img pv2.img 2>err) || fail "scan of damaged copy failed"
grep -q "checksum" err || fail "damage not reported: $(cat err)"
[ "$(echo "$out" | jq -r '.vgs[0].vg_name')" = vg_sample ] || fail "second mda not used"

# Damage to the label sector: not a PV any more (a typed error, exit 0, no panic).
cp --sparse=always pv4.img nolabel.img
printf '\x01' | dd of=nolabel.img bs=1 seek=$((512 + 40)) conv=notrunc status=none
rc=0; out=$("$BIN/lvmetad-scan" --json nolabel.img 2>err) || rc=$?
[ $rc = 0 ] || fail "exit $rc on a damaged label"
grep -qi "checksum" err || fail "label damage not reported: $(cat err)"
[ "$(echo "$out" | jq '.pvs | length')" = 0 ] || fail "damaged label still reported as a PV"
! grep -qi panick err || fail "panicked"
exit 0
