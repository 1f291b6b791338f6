# Guest-side helpers of tests/shell/cmirrord-cluster-root.sh, sourced by the commands the host
# runs in each guest through tests/vm/cluster.sh (VC_NODE = this node's id, VC_NET = the subnet,
# VC_NODES = node count, CMIRRORD = the binary under test). Logs and state live under /tmp/cm
# (the guest's own tmpfs: a killed node loses them, as a real one would).
[ "${IN_VM:-0}" = 1 ] || { echo "cmirrord-cluster.sh: guest only" >&2; exit 2; }
W=/tmp/cm
mkdir -p "$W"
read -r LEG1 LEG2 LOGDEV _ <<<"$VM_DISKS"

# node_start: corosync with the whole nodelist, then our cmirrord (foreground, traced).
node_start() {
    local j
    {
        printf 'totem {\n version: 2\n cluster_name: cmvm\n transport: knet\n'
        printf ' crypto_cipher: none\n crypto_hash: none\n token: 10000\n}\nnodelist {\n'
        for ((j = 1; j <= VC_NODES; j++)); do
            printf ' node {\n  ring0_addr: %s.%s\n  nodeid: %s\n  name: node%s\n }\n' "$VC_NET" "$j" "$j" "$j"
        done
        printf '}\nquorum {\n provider: corosync_votequorum\n}\n'
        printf 'logging {\n to_stderr: yes\n to_syslog: no\n timestamp: on\n}\n'
    } >"$W/corosync.conf"
    setsid corosync -f -c "$W/corosync.conf" >"$W/corosync.log" 2>&1 </dev/null &
    for _ in $(seq 300); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 0.2; done
    corosync-cfgtool -s >/dev/null 2>&1 || { tail "$W/corosync.log"; return 1; }
    CMIRRORD_TRACE=1 setsid "$CMIRRORD" -f >"$W/cmirrord.log" 2>&1 </dev/null &
    echo $! >"$W/cmirrord.pid"
    sleep 0.3
    kill -0 "$(cat "$W/cmirrord.pid")" || { cat "$W/cmirrord.log"; return 1; }
}

# rings: how many memberships this node's corosync has formed (a token lost under load, a node
# gone or back: each makes a new one).
rings() { grep -c "new membership" "$W/corosync.log"; }

# members: how many nodes this node's corosync sees.
members() { corosync-quorumtool -s 2>/dev/null | sed -n 's/^Nodes: *//p'; }

# wait_members N [SECS]
wait_members() {
    local k
    for ((k = 0; k < ${2:-60} * 5; k++)); do [ "$(members)" = "$1" ] && return 0; sleep 0.2; done
    echo "node $VC_NODE sees $(members) members, not $1"
    return 1
}

# table KIND UUID SECTORS REGION: the mirror table every node loads.
table() {
    local log
    if [ "$1" = core ]; then
        log="userspace 3 $2 clustered-core $4"
    else
        log="userspace 4 $2 clustered-disk $LOGDEV $4"
    fi
    echo "0 $3 mirror $log 2 $LEG1 0 $LEG2 0 1 handle_errors"
}

# sync_ratio: "done/total" of the mirror "cm".
sync_ratio() { dmsetup status cm | awk '{print $7}'; }

# nudge_start / nudge_stop: this node reads one 4 KiB block of the mirror (O_DIRECT) every
# 0.3 s in the background. dm-raid1 asks its log for resync work only when its worker runs, and
# a read runs it: without I/O of their own, the nodes that were told "another node recovers"
# never ask again and one node does the whole resync (the hand-out is correct either way).
nudge_start() {
    (
        i=0
        while :; do
            dd if=/dev/mapper/cm of=/dev/null bs=4K count=1 skip=$((i % 64 * 8)) iflag=direct status=none
            i=$((i + 1))
            sleep 0.3
        done
    ) >/dev/null 2>&1 </dev/null &
    echo $! >"$W/nudge.pid"
}
nudge_stop() {
    [ -f "$W/nudge.pid" ] || return 0
    kill "$(cat "$W/nudge.pid")" 2>/dev/null
    while kill -0 "$(cat "$W/nudge.pid")" 2>/dev/null; do sleep 0.1; done
    rm -f "$W/nudge.pid"
}

# cmdump: the SIGUSR1 dump of our cmirrord (the dump's lines, without the log prefix).
cmdump() {
    local n
    n=$(grep -c . "$W/cmirrord.log")
    kill -USR1 "$(cat "$W/cmirrord.pid")"
    for _ in $(seq 50); do
        tail -n +$((n + 1)) "$W/cmirrord.log" | grep -q "Cluster requests delivered" && break
        sleep 0.1
    done
    sleep 0.2
    tail -n +$((n + 1)) "$W/cmirrord.log"
}
