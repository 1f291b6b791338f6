#!/bin/bash
# Needs root (loop devices). `lvmetad-scan --cache` sends its pv_found requests over several
# connections (--feeds 4, the default) and leaves lvmetad exactly as the one-connection feed of
# lvm2 does (--feeds 1): the same dump, pv_list, vg_list, global flags and the same warnings,
# over a set with everything whose order matters: VGs of several PVs, a PV without metadata
# areas, a VG whose PVs disagree on the seqno (the older copy first), an orphan, a dd clone
# (duplicate PVs: lvmetad ends disabled) and a PV with a damaged label; then again without the
# clone, where --feeds 4 sends each PV as it is read (common/src/scan/stream.rs) in one pass.
# strace counts the connections and pv_clear_all requests, so a parallel feed that quietly ran
# on one connection, or a streamed one that quietly fell back to a second pass, fails; and the
# VG metadata copies, which the streamed feed sends once per VG text where lvm2 sends one per PV.
# (lvmetad killed mid-feed and scanners at once, with the default feed: rel-faults.sh.)
# timeout: 120
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/scan.sh"
need_loop_root socat strace

for i in 1 2 3 4 5 6 7 8 9 10 11 12; do make_loop "L$i" 16M "pv$i"; done
q() { lvm_c "$@" >/dev/null || fail "lvm $*"; }
q vgcreate -q vg1 "$L1" "$L2" "$L3"
q lvcreate -q -Zn -an -n lv0 -l 5 vg1
q pvcreate -q "$L4"
q pvcreate -q --metadatacopies 0 "$L5"
q vgcreate -q vg2 "$L4" "$L5"
q lvcreate -q -Zn -an -n lv0 -l 1 vg2
q vgcreate -q vg3 "$L6"
# vg4: L8's metadata is one change newer than L7's (L7's first MiB put back after lvcreate).
q vgcreate -q vg4 "$L7" "$L8"
dd if="$L7" of="$TESTDIR/l7.head" bs=1M count=1 iflag=direct status=none || fail "save L7"
q lvcreate -q -Zn -an -n lv0 -l 1 vg4
dd if="$TESTDIR/l7.head" of="$L7" bs=1M oflag=direct status=none || fail "restore L7"
q pvcreate -q "$L9"
dd if="$L6" of="$L10" bs=1M oflag=direct status=none || fail "clone L6"
q pvcreate -q "$L11"
# Damage L11's label: a byte of its pv_header changes, the label's checksum no longer matches.
printf '\xff' | dd of="$L11" bs=1 seek=$((512 + 40)) conv=notrunc status=none || fail "damage L11"
q vgcreate -q vg5 "$L12"
write_scan_conf "$TESTDIR/lvm.conf"

# state: the cache as lvmetad reports it (dump lines sorted: hash order is not state), its
# lists, its flags, and the scanner's own view.
state() {
    local r
    for r in dump pv_list vg_list get_global_info; do
        echo "== $r"
        printf 'request="%s"\ntoken="skip"\npid=1\ncmd="test"\n' "$r" | send "$SOCK" \
            | sed '/^# VERIFICATION/,$d' | grep -v '^daemon_pid' | sort
    done
    "$BIN/lvmetad-scan" --show --json -s "$SOCK"
}

# compare TAG: a scan with --feeds 1 and one with --feeds 4, each into a fresh lvmetad; the
# state, warnings, connections and pv_clear_all requests of each in $TESTDIR/*.TAG.FEEDS.
compare() {
    local tag=$1 feeds conns
    for feeds in 1 4; do
        start_lvmetad
        strace -f -qq -s 4000 -e trace=connect,write,sendto -o "$TESTDIR/trace.$tag.$feeds" \
            "$BIN/lvmetad-scan" --cache --feeds "$feeds" -s "$SOCK" --config "$TESTDIR/lvm.conf" \
            2>"$TESTDIR/err.$tag.$feeds"
        echo "rc=$?" >>"$TESTDIR/err.$tag.$feeds"
        state >"$TESTDIR/state.$tag.$feeds"
        kill "$LVMETAD_PID"
        wait_gone "$LVMETAD_PID" || fail "lvmetad did not stop"
        conns=$(grep -c "connect(.*lvmetad.socket" "$TESTDIR/trace.$tag.$feeds")
        clears=$(grep -c 'pv_clear_all' "$TESTDIR/trace.$tag.$feeds")
        # pv_found requests that carry VG metadata (vgname comes with it).
        copies=$(grep -c 'pv_found.*vgname=' "$TESTDIR/trace.$tag.$feeds")
        note "$tag, --feeds $feeds: $conns connections, $clears pv_clear_all, $copies VG metadata copies, $(grep -c . "$TESTDIR/state.$tag.$feeds") lines of state"
        eval "conns_$feeds=$conns clears_$feeds=$clears copies_$feeds=$copies"
    done
    [ "$conns_1" = 1 ] || fail "$tag: --feeds 1 opened $conns_1 connections"
    [ "$clears_1" = 1 ] || fail "$tag: --feeds 1 sent pv_clear_all $clears_1 times"
    diff -u "$TESTDIR/err.$tag.1" "$TESTDIR/err.$tag.4" || fail "$tag: the parallel feed warns differently"
    diff -u "$TESTDIR/state.$tag.1" "$TESTDIR/state.$tag.4" || fail "$tag: the parallel feed leaves another cache"
}

compare dup
# The set holds what it claims (so that the comparison above covers it).
e=$TESTDIR/err.dup.1 s=$TESTDIR/state.dup.1
grep -q "rc=0" "$e" || fail "sequential scan failed: $(cat "$e")"
grep -q "Inconsistent metadata found for VG vg4" "$e" || fail "no seqno warning for vg4: $(cat "$e")"
grep -q "found on several devices" "$e" || fail "no duplicate warning: $(cat "$e")"
grep -q "$L11" "$e" || fail "no warning for the damaged label: $(cat "$e")"
grep -q 'global_disable = 1' "$s" || fail "duplicates did not disable lvmetad"
[ "$(jq '[.pvs[] | select(.vg_name == "vg2")] | length' <(sed -n '/^{/,$p' "$s"))" = 2 ] \
    || fail "vg2 lacks its PV without metadata areas: $(cat "$s")"
[ "$(jq '[.pvs[] | select(.vg_name == "")] | length' <(sed -n '/^{/,$p' "$s"))" -ge 1 ] \
    || fail "no orphan PV cached: $(cat "$s")"
# Duplicates cannot be fed as the devices are read: the streamed feed starts again from a
# cleared cache once the scan is complete.
[ "$clears_4" = 2 ] || fail "with duplicates --feeds 4 sent pv_clear_all $clears_4 times, want 2"
[ "$conns_4" -ge 5 ] || fail "with duplicates --feeds 4 opened $conns_4 connections, want 1 + 4 at least"
note "with duplicates: parallel and sequential feeds leave the same cache and warnings"

# Without the clone every PV goes to lvmetad as it is read, with no second pass.
dd if=/dev/zero of="$L10" bs=1M count=1 oflag=direct status=none || fail "wipe L10"
compare clean
grep -q 'global_disable = 0' "$TESTDIR/state.clean.1" || fail "a clean scan left lvmetad disabled"
grep -q "Inconsistent metadata found for VG vg4" "$TESTDIR/err.clean.4" \
    || fail "no seqno warning for vg4 from the streamed feed"
[ "$clears_4" = 1 ] || fail "the clean streamed feed sent pv_clear_all $clears_4 times, want 1"
[ "$conns_4" = 5 ] || fail "the clean streamed feed opened $conns_4 connections, want 1 + 4"
# 8 PVs carry VG metadata; the streamed feed sends vg1's (3 PVs, one text) once: vg4's PVs
# hold two texts and keep theirs (common/src/scan/vg_once.rs).
[ "$copies_1" = 8 ] || fail "--feeds 1 sent $copies_1 VG metadata copies, want 8 (one per PV)"
[ "$copies_4" = 6 ] || fail "the streamed feed sent $copies_4 VG metadata copies, want 6"
note "without duplicates: the streamed feed leaves the same cache and warnings, in one pass"
exit 0
