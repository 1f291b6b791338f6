#!/usr/bin/env bash
# Runs cmirrord-bench against real daemons: a 1-node and a 3-node corosync cluster in network
# namespaces (the test helpers of tests/lib/cmirrord.sh). Root. Build first:
#   cargo build --release -p cmirrord --features common/test-support &&
#       BIN=target/release cmirrord/bench-cluster.sh [SECONDS]
set -u
SECS=${1:-3}
. "$(dirname "$0")/../tests/lib/common.sh"
. "$(dirname "$0")/../tests/lib/cmirrord.sh"
cm_require
echo "== in-process (simulated CPG)"
"$BIN/cmirrord-bench" sim "$SECS"
for n in 1 3; do
    echo "== $n-node corosync"
    CM_NODES=()
    CM_HUB=
    CM_TAG="cmb$$x$n"
    cm_net "$n"
    for ((i = 1; i <= n; i++)); do cm_corosync "$i"; done
    cm_wait_members "$n"
    socks=()
    for ((i = 1; i <= n; i++)); do cm_daemon "$i"; socks+=("$(cm_sock "$i")"); done
    "$BIN/cmirrord-bench" cluster "$SECS" "${socks[@]}" || echo "bench failed"
    cm_teardown
done
