#!/usr/bin/env bash
# cmirrord on a real single-node corosync (in a private network namespace): a core and a disk
# log go through CTR, RESUME, mark/clear/flush, a complete resync, status, suspend and destroy;
# SIGUSR1 dumps state; SIGTERM is refused while logs exist and exits once they are gone. Root.
# timeout: 60
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/cmirrord.sh"
cm_require
cm_net 1
cm_corosync 1
cm_daemon 1
U=LVM-single0000000000000000000000000000000000000000000000000000001
out=$(kc 1 "ctr $U 11 8192 clustered-core 1024" "resume $U 11" "region_size $U 11" "sync_count $U 11" \
    "status_info $U 11" "status_table $U 11" "resync $U 11 0" "sync_count $U 11" "in_sync $U 11 7" \
    "mark $U 11 2 3" "is_clean $U 11 2" "clear $U 11 2" "flush $U 11" "is_clean $U 11 2" "is_clean $U 11 3" \
    "work $U 11" "remote $U 11 5") || fail "request stream failed: $out"
expect_eq "single-node stream" "$(echo "$out" | paste -sd'|')" \
    'ok|ok|1024|0|1 clustered-core|"clustered-core 1024  "|8|8|1|ok|0|ok|ok|1|0|0|0 7'
# A region past the end is refused, not read out of bounds.
kc 1 "in_sync $U 11 8" 2>&1 | grep -q "error -22" || fail "region 8 of 8 was not refused"
# A second instance of the same uuid (new luid, as a table reload makes) stays apart.
expect_eq "second instance" "$(kc 1 "ctr $U 12 16384 clustered-core 1024" "sync_count $U 12" "sync_count $U 11" | paste -sd' ')" "ok 0 8"
# Garbage on the kernel link (junk, a request whose data_size exceeds the frame, an unknown
# connector id) is logged and dropped; the daemon keeps serving.
command -v python3 >/dev/null && python3 - "$(cm_sock 1)" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
hdr = lambda n: struct.pack("=IHHII", 16 + 20 + n, 3, 0, 0, 1)
cn = lambda n, idx=7: struct.pack("=IIIIHH", idx, 1, 5, 0, n, 0)
req = struct.pack("=Q129s3xIiIII", 1, b"LVM-x", 2, 0, 5, 9, 500)
for msg in (b"garbage", hdr(len(req)) + cn(len(req)) + req, hdr(0) + cn(0, 9), b"\0" * 2048):
    s.sendto(msg, sys.argv[1])
PY
expect_eq "still serving after garbage" "$(kc 1 "sync_count $U 11")" 8
kill -USR1 "$(cm_pid 1 cmirrord)"
for ((i = 0; i < 100; i++)); do
    grep -q "CLUSTER COMPONENT DEBUGGING::" "$(cm_dir 1)/cmirrord.log" && break
    sleep 0.05
done
grep -q "LOG COMPONENT DEBUGGING::" "$(cm_dir 1)/cmirrord.log" || fail "no SIGUSR1 dump"
grep -q "CLUSTER COMPONENT DEBUGGING::" "$(cm_dir 1)/cmirrord.log" || fail "no cluster dump"
kill -TERM "$(cm_pid 1 cmirrord)"
for ((i = 0; i < 100; i++)); do
    grep -q "Cluster logs exist.  Refusing to exit." "$(cm_dir 1)/cmirrord.log" && break
    sleep 0.05
done
kill -0 "$(cm_pid 1 cmirrord)" || fail "exited although logs exist"
grep -q "Cluster logs exist.  Refusing to exit." "$(cm_dir 1)/cmirrord.log" || fail "no refusal message"
out=$(kc 1 "presuspend $U 11" "postsuspend $U 11" "dtr $U 11" "dtr $U 12" "dtr $U 12") || fail "teardown: $out"
expect_eq "suspend and destroy" "$(echo "$out" | paste -sd' ')" "ok ok ok ok error -22"
kill -TERM "$(cm_pid 1 cmirrord)"
wait_gone "$(cm_pid 1 cmirrord)" 5 || fail "did not exit on SIGTERM without logs"
ip netns exec "$(cm_ns 1)" corosync-cpgtool 2>/dev/null | grep -q "$U" && fail "CPG group still joined"
echo "single-node corosync: ok"
