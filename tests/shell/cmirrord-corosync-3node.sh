#!/usr/bin/env bash
# Three cmirrords on a real 3-node corosync cluster (network namespaces on a bridge): request
# streams from every node, a node joining mid-resync gets the checkpoint (marks included), the
# server leaving mid-resync and a node crashing leave the others consistent, and a 1 TiB /
# 512 KiB-region log (8 TiB) whose checkpoint (2 x 2 MiB) exceeds CPG's message size. Root.
# timeout: 120
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/cmirrord.sh"
cm_require
cm_net 3
for i in 1 2 3; do cm_corosync "$i"; done
t0=$(date +%s.%N)
cm_wait_members 3
note "corosync membership of 3 formed in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
for i in 1 2 3; do cm_daemon "$i"; done
U=LVM-threenode000000000000000000000000000000000000000000000000000001
N=300

# The state a node sees, to compare nodes.
view() { kc "$1" "sync_count $U $2" "is_clean $U $2 5" "is_clean $U $2 6" "in_sync $U $2 299" | paste -sd' '; }

note "nodes 1 and 2 resume a $N-region core log; node 2 recovers 100 regions"
kc 1 "ctr $U 1 $((N * 1024)) clustered-core 1024" "resume $U 1" >/dev/null || fail "node 1 resume"
kc 2 "ctr $U 2 $((N * 1024)) clustered-core 1024" "resume $U 2" >/dev/null || fail "node 2 resume"
expect_eq "node 2 resync" "$(kc 2 "resync $U 2 100")" 100
kc 1 "mark $U 1 5" >/dev/null && kc 2 "mark $U 2 5 6" >/dev/null && kc 1 "clear $U 1 5 6" >/dev/null || fail "marks"

note "node 3 joins mid-resync"
kc 3 "ctr $U 3 $((N * 1024)) clustered-core 1024" "resume $U 3" >/dev/null || fail "node 3 resume"
grep -q "Checkpoint data received" "$(cm_dir 3)/cmirrord.log" || fail "node 3 got no checkpoint"
expect_eq "node 3 after join" "$(view 3 3)" "$(view 1 1)"
expect_eq "node 3 sees node 2's marks" "$(kc 3 "is_clean $U 3 5" "is_clean $U 3 6" | paste -sd' ')" "0 0"

note "request streams from all three nodes at once"
pids=()
for i in 1 2 3; do
    kc "$i" "resync $U $i 0 $N" "cycle $U $i 40 $((10 * i))" >"$TESTDIR/stream$i.out" 2>&1 &
    pids+=($!)
done
for i in 1 2 3; do
    wait "${pids[$((i - 1))]}" || fail "stream $i failed: $(cat "$TESTDIR/stream$i.out")"
    grep -q . "$TESTDIR/stream$i.out" || fail "stream $i printed nothing"
done
total=$(( $(head -1 "$TESTDIR/stream1.out") + $(head -1 "$TESTDIR/stream2.out") + $(head -1 "$TESTDIR/stream3.out") ))
expect_eq "regions recovered by the three streams" "$total" $((N - 100))
expect_eq "node 1 = node 2" "$(view 1 1)" "$(view 2 2)"
expect_eq "node 2 = node 3" "$(view 2 2)" "$(view 3 3)"
expect_eq "sync count" "$(kc 3 "sync_count $U 3")" "$N"

note "the server (node 1) suspends and leaves mid-resync of a second log"
V=LVM-threenode000000000000000000000000000000000000000000000000000002
for i in 1 2 3; do kc "$i" "ctr $V $i $((N * 1024)) clustered-core 1024" "resume $V $i" >/dev/null || fail "V resume $i"; done
kc 2 "resync $V 2 0 $N" >"$TESTDIR/v2.out" 2>&1 &
p2=$!
kc 3 "resync $V 3 0 $N" >"$TESTDIR/v3.out" 2>&1 &
p3=$!
kc 1 "resync $V 1 30" "presuspend $V 1" "postsuspend $V 1" "dtr $V 1" >"$TESTDIR/v1.out" || fail "node 1 leave: $(cat "$TESTDIR/v1.out")"
wait "$p2" || fail "node 2 stream: $(cat "$TESTDIR/v2.out")"
wait "$p3" || fail "node 3 stream: $(cat "$TESTDIR/v3.out")"
v() { kc "$1" "sync_count $V $1" "is_clean $V $1 0" "in_sync $V $1 150" | paste -sd' '; }
expect_eq "node 2 = node 3 after the server left" "$(v 2)" "$(v 3)"
expect_eq "second log complete" "$(kc 2 "sync_count $V 2")" "$N"

note "node 3 crashes; node 2 carries on alone"
kill -9 "$(cm_pid 3 cmirrord)"
wait_gone "$(cm_pid 3 cmirrord)" 10 || fail "node 3's cmirrord survived SIGKILL"
expect_eq "node 2 after crash" "$(kc 2 "mark $V 2 7" "is_clean $V 2 7" "clear $V 2 7" "flush $V 2" "is_clean $V 2 7" | paste -sd' ')" "ok 0 ok ok 1"

note "8 TiB mirror, 512 KiB regions: a 2 x 2 MiB checkpoint, larger than one CPG message"
cm_daemon 3
B=LVM-threenode000000000000000000000000000000000000000000000000000003
kc 1 "ctr $B 1 17179869184 clustered-core 1024 nosync" "resume $B 1" "set_sync $B 1 1000000 0" >/dev/null || fail "big log node 1"
t0=$(date +%s.%N)
kc 3 "ctr $B 3 17179869184 clustered-core 1024 nosync" "resume $B 3" >/dev/null || fail "big log node 3"
t1=$(date +%s.%N)
note "join with a 2 x 2 MiB checkpoint took $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s"
# The image is a 36-byte header, the sync and clean bitmaps (2^24 regions: 2 MiB each) and an
# empty mark list (4 bytes); each piece carries at most max_message - 184 (message header) - 8
# (piece header) bytes of it.
# (node 1 logs it once the last piece is out: wait for the line of this log, $B's short uuid)
for _ in $(seq 100); do
    line=$(grep -E "\[${B: -8}\] Checkpoint for node 3 sent in [0-9]+ pieces of at most [0-9]+ bytes" "$(cm_dir 1)/cmirrord.log" | tail -1)
    [ -n "$line" ] && break
    sleep 0.1
done
note "${line:-no checkpoint line}"
pieces=$(sed -n 's/.*sent in \([0-9]*\) pieces of at most \([0-9]*\) bytes.*/\1/p' <<<"$line")
max=$(sed -n 's/.*sent in \([0-9]*\) pieces of at most \([0-9]*\) bytes.*/\2/p' <<<"$line")
[ -n "$pieces" ] && [ -n "$max" ] || fail "no checkpoint line for node 3 in node 1's log"
image=$((36 + 2 * 2097152 + 4)) chunk=$((max - 184 - 8))
expect_eq "checkpoint pieces for a $image-byte image in ${max}-byte messages" "$pieces" $(((image + chunk - 1) / chunk))
[ "$pieces" -gt 1 ] || fail "big checkpoint was not split (pieces=$pieces)"
expect_eq "big log on node 3" "$(kc 3 "sync_count $B 3" "in_sync $B 3 1000000" "in_sync $B 3 1000001" | paste -sd' ')" "16777215 0 1"
echo "3-node corosync: ok"
