#!/usr/bin/env bash
# Three real kernels share one mirror through our cmirrord (QEMU tier, cluster mode, root):
# three guests on a bridge in a private network namespace, corosync on each, the same shared raw
# images (two legs, one log device) in every guest, the same `mirror ... userspace` table (same
# uuid) loaded with dmsetup on every node.
#  A clustered-core, CM_REGIONS regions (default 512): one CPG group of three per log; a pattern
#    written on node 1 is read back on node 3 and is on both legs; the resync runs once for the
#    cluster (every region handed out once, never two at a time, to more than one node) and every
#    node reports the same in-sync count.
#  B clustered-disk: node 2's QEMU is SIGKILLed mid-resync; nodes 1 and 3 finish, nothing stays
#    claimed by node 2, writes during the failure reach both legs; node 2 boots again, rejoins,
#    receives the checkpoint and reports the same state.
#  C clustered-disk: the log server (node 1, lowest id) is SIGKILLed mid-resync; the role moves
#    to node 2 and the resync finishes; the on-disk log equals what the survivors report.
# CMIRRORD=path picks the binary under test. See tests/vm/README.md (cluster mode).
# timeout: 1500
. "$(dirname "$0")/../lib/common.sh"
need_root
need_cmd qemu-system-x86_64 corosync corosync-cfgtool corosync-quorumtool corosync-cpgtool dmsetup
# Guests outlive the test (vc_down ends them): their own wall-clock limit must not cut a slow run.
VC_TIMEOUT=${VC_TIMEOUT:-3600}
. "$TOP/tests/vm/cluster.sh"
vc_require
CMIRRORD=${CMIRRORD:-$BIN/cmirrord}
[ -x "$CMIRRORD" ] || fail "no $CMIRRORD: build first"
trap 'exit 143' TERM INT
at_exit vc_down

REGIONS=${CM_REGIONS:-512}
KILL_REGIONS=${CM_KILL_REGIONS:-192}
RS=16 # sectors per region (8 KiB)
[ "$REGIONS" -ge "$KILL_REGIONS" ] && [ "$KILL_REGIONS" -ge 96 ] || fail "want CM_REGIONS >= CM_KILL_REGIONS >= 96"
LEG_BYTES=$((REGIONS * RS * 512))
GL=". $TOP/tests/vm/guest/cmirrord-cluster.sh;"
VC_ENV=("CMIRRORD=$CMIRRORD" VC_NODES=3 "VC_NET=$VC_NET")

expect_eq() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }
# g I SCRIPT [SECS]: run SCRIPT in guest I with the guest helpers loaded.
g() { vc_run "$1" "$GL $2" "${3:-120}"; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }'; }
# host_read IMAGE N: the Nth 256 KiB of a shared image, read past the host page cache.
host_read() { dd if="$1" bs=256K skip="$2" count=1 iflag=direct status=none; }
synced() { g "$1" 'sync_ratio' | awk -F/ '{ print $1 }'; }
# wait_synced I WANT SECS: until node I reports at least WANT regions in sync.
wait_synced() {
    local t0 s
    t0=$(date +%s)
    while :; do
        kill -0 "${VC_PIDS[$1]}" 2>/dev/null || { note "node $1: its VM is gone"; return 1; }
        s=$(synced "$1")
        [ "${s:-0}" -ge "$2" ] && return 0
        [ $(($(date +%s) - t0)) -lt "$3" ] || { note "node $1: ${s:-?} regions in sync after $3 s"; return 1; }
        sleep 2
    done
}
# loglines I: how many lines node I's cmirrord has logged (a trace starts after them).
loglines() { g "$1" 'grep -c "" $W/cmirrord.log'; }
# handout NODE FROM: check node NODE's resync trace (the hand-outs logged after line FROM); prints
# "assigned=A distinct=D nodes=N1:C1,N2:C2 released=R"; fails on a region handed out while
# another is being recovered or set in sync by another node than its recoverer.
handout() {
    g "$1" "tail -n +\$(($2 + 1)) \$W/cmirrord.log | grep 'history: '" 60 | awk '
        /Assigning (priority )?resync work/ {
            match($0, /nodeid = [0-9]+/); w = substr($0, RSTART + 9, RLENGTH - 9)
            match($0, /\([0-9]+\)$/); r = substr($0, RSTART + 1, RLENGTH - 2)
            if (claim != "") { print "BAD: region " r " to node " w " while " claim " is recovered"; bad = 1 }
            claim = r ":" w; n++; if (!(r in seen)) d++; seen[r]++; by[w]++
        }
        /Setting region/ {
            match($0, /nodeid = [0-9]+/); w = substr($0, RSTART + 9, RLENGTH - 9)
            match($0, /\([0-9]+\)$/); r = substr($0, RSTART + 1, RLENGTH - 2)
            if (claim != "" && claim != r ":" w) { print "BAD: node " w " set region " r " while " claim " is recovered"; bad = 1 }
            if (claim == r ":" w) claim = ""
        }
        /left while recovering region/ { rel++; claim = "" }
        END {
            s = ""; for (w in by) s = s (s == "" ? "" : ",") w ":" by[w]
            printf "assigned=%d distinct=%d nodes=%s released=%d\n", n, d, s, rel + 0
            exit bad
        }'
}
# show_nodes I...: what each live node's cmirrord and kernel say (for a failure's report).
show_nodes() {
    local i
    for i in "$@"; do
        echo "--- node $i: dmsetup status, cmirrord dump, its last non-trace lines" >&2
        g "$i" 'dmsetup status cm; cmdump | grep -v "^\[\|history:"; grep -v "history: " $W/cmirrord.log | tail -40' 60 >&2
    done
}
# cpg_members I UUID: how many members node I sees in the CPG group of log UUID.
cpg_members() {
    g "$1" 'corosync-cpgtool' | awk -v u="$2" '
        /^[^ \t]/ { ingroup = index($0, u) > 0; next }
        ingroup && /[0-9]/ { n++ }
        END { print n + 0 }'
}

note "images: two ${REGIONS}-region legs ($((LEG_BYTES >> 10)) KiB), a 4 MiB log device"
vc_setup 3 "$TESTDIR/vc"
vc_disk "$TESTDIR/leg1.img" "$LEG_BYTES"
vc_disk "$TESTDIR/leg2.img" "$LEG_BYTES"
vc_disk "$TESTDIR/log.img" 4M
# Leg 1 holds data the resyncs must copy to leg 2.
head -c "$LEG_BYTES" /dev/urandom | dd of="$TESTDIR/leg1.img" conv=notrunc status=none
dd if=/dev/urandom of="$TESTDIR/pat1" bs=256K count=1 status=none
dd if=/dev/urandom of="$TESTDIR/pat2" bs=256K count=1 status=none

t0=$(date +%s.%N)
for i in 1 2 3; do vc_boot "$i"; done
for i in 1 2 3; do vc_wait "$i" 300; done
note "3 guests booted in $(elapsed "$t0") s"
pids=()
for i in 1 2 3; do
    g "$i" 'node_start' 600 >"$TESTDIR/start$i" 2>&1 &
    pids+=($!)
done
for i in 1 2 3; do wait "${pids[$((i - 1))]}" || fail "node $i: corosync or cmirrord did not start: $(cat "$TESTDIR/start$i")"; done
for i in 1 2 3; do g "$i" 'wait_members 3 300' 310 || fail "node $i: no 3-node membership"; done
note "corosync membership of 3 after $(elapsed "$t0") s"

# --- A: clustered-core, the whole resync with three nodes ------------------------------------------
UA=LVM-cmclusterA0000000000000000000000000000000000000000000000000000001
ta=$(date +%s.%N)
from1=$(loglines 1)
rings1=$(g 1 rings)
for i in 1 2 3; do
    g "$i" "dmsetup create cm --table \"\$(table core $UA $((REGIONS * RS)) $RS)\"" 180 \
        || fail "node $i: clustered-core mirror not created"
done
for i in 1 2 3; do
    expect_eq "node $i: members of the CPG group of the log" "$(cpg_members "$i" "$UA")" 3
done
g 1 "dd if=$TESTDIR/pat1 of=/dev/mapper/cm bs=256K seek=1 oflag=direct status=none" 180 || fail "write on node 1"
g 3 "cmp <(dd if=/dev/mapper/cm bs=256K skip=1 count=1 iflag=direct status=none) $TESTDIR/pat1" 180 \
    || fail "node 3 does not read node 1's pattern through its mirror"
cmp -s <(host_read "$TESTDIR/leg1.img" 1) "$TESTDIR/pat1" || fail "node 1's pattern is not on leg 1"
cmp -s <(host_read "$TESTDIR/leg2.img" 1) "$TESTDIR/pat1" || fail "node 1's pattern is not on leg 2"
note "pattern written on node 1 read on node 3 and on both legs"
# Nodes 2 and 3 read now and then, so their kernels keep asking for resync work too.
for i in 2 3; do g "$i" nudge_start || fail "node $i: reader not started"; done
wait_synced 1 "$REGIONS" 1200 || fail "clustered-core resync did not complete"
for i in 2 3; do g "$i" nudge_stop || fail "node $i: reader not stopped"; done
note "clustered-core resync of $REGIONS regions: $(elapsed "$ta") s"
# CPG delivers in one order to all, but each node applies at its own pace: wait for each.
for i in 1 2 3; do
    wait_synced "$i" "$REGIONS" 60 || {
        for j in 1 "$i"; do
            echo "--- node $j: dump and checkpoint/leave lines" >&2
            g "$j" 'cmdump; grep -iE "checkpoint|join|left|server" $W/cmirrord.log | grep -v history:' 60 >&2
        done
        fail "node $i never reports $REGIONS/$REGIONS in sync"
    }
    expect_eq "node $i: in sync" "$(g "$i" sync_ratio)" "$REGIONS/$REGIONS"
done
# Token 10 s: a loaded host must not make corosync drop a node that is alive (a partition and
# merge is another test; the hand-out below assumes one membership).
rings=$(g 1 rings)
if [ "$rings" != "$rings1" ]; then
    echo "--- node 1: corosync membership lines" >&2
    g 1 'grep -iE "membership|token|link|retransmit" $W/corosync.log | tail -40' >&2
fi
expect_eq "corosync memberships formed on node 1 during resync A" "$rings" "$rings1"
h=$(handout 1 "$from1") || fail "resync hand-out: $h"
note "hand-out seen by node 1: $h"
[[ $h == *"assigned=$REGIONS distinct=$REGIONS "* ]] || fail "every region handed out exactly once: $h"
[[ $h == *nodes=*,* ]] || fail "the resync work went to one node only: $h"
cmp -s "$TESTDIR/leg1.img" "$TESTDIR/leg2.img" || fail "legs differ after the clustered-core resync"
if [ "${CM_FIGURES:-0}" = 1 ]; then
    # Figures for cmirrord/README.md (printed, not asserted): O_DIRECT writes of 64 KiB (8 regions
    # each) through the in-sync mirror, from node 1 alone, then from the three nodes at once (each
    # its own quarter); log requests delivered per second (node 1's count, every node sees all).
    delivered() { g 1 'cmdump' 60 | sed -n 's/.*Cluster requests delivered: //p'; }
    q=$((LEG_BYTES / 4 / 65536))
    wr() { g "$1" "dd if=/dev/zero of=/dev/mapper/cm bs=64K count=$q seek=$(($2 * q)) oflag=direct 2>&1 | tail -1" 600; }
    r0=$(delivered)
    one=$(wr 1 0)
    r1=$(delivered)
    note "1 node:   $one; log requests: $((r1 - r0))"
    pids=()
    for i in 1 2 3; do
        wr "$i" "$i" >"$TESTDIR/fig$i" &
        pids+=($!)
    done
    wait "${pids[@]}"
    r2=$(delivered)
    for i in 1 2 3; do note "3 nodes, node $i: $(cat "$TESTDIR/fig$i")"; done
    note "3 nodes: log requests: $((r2 - r1))"
fi
for i in 1 2 3; do g "$i" 'dmsetup remove cm' 120 || fail "node $i: remove"; done
[ "${CM_ONLY_A:-0}" = 1 ] && { echo "cmirrord cluster: phase A only: ok"; exit 0; }

# --- B: clustered-disk, node 2 dies mid-resync and comes back ----------------------------------------
KSECT=$((KILL_REGIONS * RS))
disk_phase() { # UUID: a fresh clustered-disk mirror of KILL_REGIONS regions on every live node
    local i
    dd if=/dev/zero of="$TESTDIR/log.img" bs=1M count=4 conv=notrunc oflag=direct status=none
    dd if=/dev/zero of="$TESTDIR/leg2.img" bs=$((RS * 512)) count="$KILL_REGIONS" conv=notrunc oflag=direct status=none
    for i in "${@:2}"; do
        g "$i" "dmsetup create cm --table \"\$(table disk $1 $KSECT $RS)\"" 180 \
            || fail "node $i: clustered-disk mirror not created"
    done
}
UB=LVM-cmclusterB0000000000000000000000000000000000000000000000000000002
from1=$(loglines 1)
disk_phase "$UB" 1 2 3
wait_synced 1 $((KILL_REGIONS / 10)) 600 || fail "resync B does not start"
before=$(synced 1)
vc_kill 2
note "node 2 killed at $before/$KILL_REGIONS"
[ "$before" -lt "$KILL_REGIONS" ] || fail "resync B was over before the kill"
g 3 "dd if=$TESTDIR/pat2 of=/dev/mapper/cm bs=256K seek=2 oflag=direct status=none" 300 \
    || fail "write on node 3 while node 2 is dead"
cmp -s <(host_read "$TESTDIR/leg1.img" 2) "$TESTDIR/pat2" || fail "write during the failure not on leg 1"
cmp -s <(host_read "$TESTDIR/leg2.img" 2) "$TESTDIR/pat2" || fail "write during the failure not on leg 2"
note "write on node 3 during the failure is on both legs"
wait_synced 1 "$KILL_REGIONS" 300 || { show_nodes 1 3; fail "nodes 1 and 3 did not finish resync B"; }
for i in 1 3; do expect_eq "node $i: in sync without node 2" "$(g "$i" sync_ratio)" "$KILL_REGIONS/$KILL_REGIONS"; done
for i in 1 3; do
    d=$(g "$i" 'cmdump' 60)
    grep -q "recoverer        : 2$" <<<"$d" && fail "node $i: a region is still claimed by dead node 2"
done
h=$(handout 1 "$from1") || fail "resync B hand-out: $h"
note "hand-out B seen by node 1: $h"
cmp -s <(head -c $((KSECT * 512)) "$TESTDIR/leg1.img") <(head -c $((KSECT * 512)) "$TESTDIR/leg2.img") \
    || fail "legs differ after resync B"
tb=$(date +%s.%N)
vc_boot 2
vc_wait 2 300
g 2 'node_start' 600 || fail "node 2: restart"
for i in 1 2 3; do g "$i" 'wait_members 3 300' 310 || fail "node $i: no 3-node membership after node 2 came back"; done
g 2 "dmsetup create cm --table \"\$(table disk $UB $KSECT $RS)\"" 180 || fail "node 2: mirror after reboot"
note "node 2 back in the cluster $(elapsed "$tb") s after its boot began"
g 2 'grep -q "Checkpoint data received" $W/cmirrord.log' || fail "node 2 got no checkpoint"
expect_eq "node 2 after rejoining" "$(g 2 sync_ratio)" "$KILL_REGIONS/$KILL_REGIONS"
expect_eq "node 2's CPG group" "$(cpg_members 2 "$UB")" 3
g 2 "cmp <(dd if=/dev/mapper/cm bs=256K skip=2 count=1 iflag=direct status=none) $TESTDIR/pat2" \
    || fail "node 2 does not read the write made while it was dead"
for i in 1 2 3; do g "$i" 'dmsetup remove cm' 120 || fail "node $i: remove B"; done

# --- C: clustered-disk, the log server (node 1) dies mid-resync --------------------------------------
UC=LVM-cmclusterC0000000000000000000000000000000000000000000000000000003
from2=$(loglines 2)
from3=$(loglines 3)
disk_phase "$UC" 1 2 3
wait_synced 2 $((KILL_REGIONS / 10)) 600 || fail "resync C does not start"
before=$(synced 2)
vc_kill 1
note "node 1 (log server) killed at $before/$KILL_REGIONS"
[ "$before" -lt "$KILL_REGIONS" ] || fail "resync C was over before the kill"
wait_synced 2 "$KILL_REGIONS" 300 || { show_nodes 2 3; fail "nodes 2 and 3 did not finish resync C"; }
for i in 2 3; do
    expect_eq "node $i: in sync without node 1" "$(g "$i" sync_ratio)" "$KILL_REGIONS/$KILL_REGIONS"
    g "$i" 'grep -q "Server change Some(1) -> Some(2) (1 left)" $W/cmirrord.log' \
        || fail "node $i: the server role did not move to node 2"
done
note "server role moved from node 1 to node 2"
# Nothing did I/O on nodes 2 and 3 after the kill: each woke its own mirror so that its kernel
# asks for resync work again (node 1 may have been the only node still asking).
for i in 2 3; do
    from=$from2; [ "$i" = 3 ] && from=$from3
    w=$(g "$i" "tail -n +\$(($from + 1)) \$W/cmirrord.log | grep 'to ask for resync work'" 60)
    grep -q "Woke /dev/mapper/cm to ask for resync work" <<<"$w" || fail "node $i did not wake its mirror: $w"
done
note "nodes 2 and 3 woke their mirrors after the kill"
h=$(handout 2 "$from2") || fail "resync C hand-out: $h"
note "hand-out C seen by node 2: $h"
# The survivors' view: clean bits from the SIGUSR1 dump; the disk: header + bitmap at 1 KiB.
for i in 2 3; do g "$i" 'cmdump' 60 >"$TESTDIR/dump$i"; done
nbytes=$(((KILL_REGIONS + 7) / 8))
clean() { # DUMP: the first nbytes bytes of the clean bits, hex
    local c
    c=$(sed 's/^[A-Z]: //' "$1" | sed -n '/^clean_bits:/,/^Validating/p' | grep '^\[' | cut -d']' -f2 | tr -d ' \n' | tr A-F a-f)
    echo "${c:0:$((nbytes * 2))}"
}
expect_eq "node 2 and node 3 clean bits" "$(clean "$TESTDIR/dump2")" "$(clean "$TESTDIR/dump3")"
disk=$(dd if="$TESTDIR/log.img" bs=4096 count=1 iflag=direct status=none | od -An -tx1 -v -j 1024 -N "$nbytes" | tr -d ' \n')
header=$(dd if="$TESTDIR/log.img" bs=4096 count=1 iflag=direct status=none | od -An -tx1 -N 16 | tr -d ' \n')
expect_eq "disk log header (MiRr v2, $KILL_REGIONS regions)" "$header" \
    "$(printf '7252694d02000000%02x%02x000000000000' $((KILL_REGIONS & 255)) $((KILL_REGIONS >> 8)))"
expect_eq "on-disk clean bits = what the survivors report" "$disk" "$(clean "$TESTDIR/dump2")"
echo "cmirrord cluster: ok"
