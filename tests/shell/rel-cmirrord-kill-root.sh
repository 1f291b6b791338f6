#!/usr/bin/env bash
# A cmirrord node killed with SIGKILL in the middle of a resync on a real 3-node corosync cluster
# (network namespaces): the streams of the other two nodes complete the resync (every region in
# sync, none lost with the dead node's claimed work) and the two survivors see the same log.
# Regression test for "dead recoverer's region never reassigned" (before the fix ~2 runs in 5
# stalled: node 2 got "no work" forever while sync_count stayed short). Root.
# timeout: 120
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/cmirrord.sh"
cm_require
cm_net 3
for i in 1 2 3; do cm_corosync "$i"; done
cm_wait_members 3
for i in 1 2 3; do cm_daemon "$i"; done
U=LVM-relkill0000000000000000000000000000000000000000000000000000001
N=3000
view() { kc "$1" "sync_count $U $1" "is_clean $U $1 5" "in_sync $U $1 0" "in_sync $U $1 $((N - 1))" | paste -sd' '; }
for i in 1 2 3; do
    kc "$i" "ctr $U $i $((N * 1024)) clustered-core 1024" "resume $U $i" >/dev/null || fail "node $i resume"
done
pids=()
for i in 2 3; do
    timeout 30 "$BIN/cmirrord-kclient" "$(cm_sock "$i")" "resync $U $i 0 $N" >"$TESTDIR/stream$i.out" 2>&1 &
    pids+=($!)
done
# Ask node 1 (no stream there): a node's kernel link has one peer, the stream's kclient.
# The kill lands once the resync has begun (some regions in sync), not after a guess.
for ((i = 0; i < 200; i++)); do
    before=$(kc 1 "sync_count $U 1")
    [ "${before:-0}" -gt 0 ] && break
    sleep 0.02
done
[ "${before:-0}" -gt 0 ] || fail "the resync never began on node 1"
kill -9 "$(cm_pid 3 cmirrord)" "${pids[1]}"   # the node dies: its daemon and its kernel side
note "node 3 killed at sync_count $before of $N"
[ "$before" -lt "$N" ] || fail "the resync was over before the kill (sync_count $before)"
wait "${pids[0]}" || fail "node 2's stream did not complete after node 3 died (node 1 sync_count $(kc 1 "sync_count $U 1"), node 2 $(kc 2 "sync_count $U 2") of $N; node 2 resync work: $(kc 2 "work $U 2")): $(cat "$TESTDIR/stream2.out")"
wait "${pids[1]}" 2>/dev/null || true # node 3's stream: killed with its node
expect_eq "sync count on node 2" "$(kc 2 "sync_count $U 2")" "$N"
expect_eq "node 1 = node 2" "$(view 1 | sed 's/^[0-9]* //')" "$(view 2 | sed 's/^[0-9]* //')"
expect_eq "sync count on node 1" "$(kc 1 "sync_count $U 1")" "$N"
note "node 2's stream recovered $(head -1 "$TESTDIR/stream2.out") regions after node 3 died"
echo PASS
