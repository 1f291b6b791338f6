# Helpers for the cmirrord shell tests: corosync clusters in network namespaces, one cmirrord
# per node whose kernel side is a UNIX socket driven by cmirrord-kclient.
# Source after common.sh. Every node is a network namespace (abstract IPC sockets, and so the
# libcpg <-> corosync connection, are per network namespace) and its corosync runs in a private
# mount namespace with its own /run (corosync locks the fixed /var/run/corosync.pid).

CM_TAG="cm$$"
CM_NODES=()
CM_HUB=

cm_require() {
    need_root
    need_cmd corosync corosync-cfgtool ip unshare
    [ -x "$BIN/cmirrord" ] && [ -x "$BIN/cmirrord-kclient" ] || fail "cmirrord binaries not built in $BIN"
    ip netns add "${CM_TAG}probe" 2>/dev/null || skip "cannot create network namespaces"
    ip netns del "${CM_TAG}probe"
}

cm_ns() { echo "${CM_TAG}n$1"; }
cm_dir() { echo "$TESTDIR/n$1"; }
cm_sock() { echo "$TESTDIR/n$1/kernel.sock"; }

# cm_net N: N nodes on one bridge (10.77.0.I/24); N=1 uses loopback only.
cm_net() {
    local n=$1 i
    at_exit cm_teardown
    if [ "$n" -gt 1 ]; then
        CM_HUB="${CM_TAG}hub"
        ip netns add "$CM_HUB"
        ip -n "$CM_HUB" link add br0 type bridge
        ip -n "$CM_HUB" link set br0 up
    fi
    for ((i = 1; i <= n; i++)); do
        ip netns add "$(cm_ns "$i")"
        ip -n "$(cm_ns "$i")" link set lo up
        mkdir -p "$(cm_dir "$i")"
        if [ -n "$CM_HUB" ]; then
            ip -n "$CM_HUB" link add "v$i" type veth peer name eth0 netns "$(cm_ns "$i")"
            ip -n "$CM_HUB" link set "v$i" master br0 up
            ip -n "$(cm_ns "$i")" addr add "10.77.0.$i/24" dev eth0
            ip -n "$(cm_ns "$i")" link set eth0 up
        fi
        CM_NODES+=("$i")
    done
}

cm_addr() { if [ -n "$CM_HUB" ]; then echo "10.77.0.$1"; else echo 127.0.0.1; fi; }

# cm_corosync I: start node I's corosync (all nodes of the net in its nodelist).
cm_corosync() {
    local i=$1 d j
    d=$(cm_dir "$i")
    {
        printf 'totem {\n version: 2\n cluster_name: cmtest\n transport: knet\n'
        printf ' crypto_cipher: none\n crypto_hash: none\n token: 1000\n}\nnodelist {\n'
        for j in "${CM_NODES[@]}"; do
            printf ' node {\n  ring0_addr: %s\n  nodeid: %s\n  name: node%s\n }\n' "$(cm_addr "$j")" "$j" "$j"
        done
        printf '}\nquorum {\n provider: corosync_votequorum\n}\nsystem {\n state_dir: %s\n}\n' "$d"
        printf 'logging {\n to_stderr: yes\n to_syslog: no\n timestamp: on\n}\n'
    } >"$d/corosync.conf"
    ip netns exec "$(cm_ns "$i")" unshare -m --propagation private \
        sh -c 'mount -t tmpfs tmpfs /run && exec corosync -f -c "$1"' sh "$d/corosync.conf" \
        >"$d/corosync.log" 2>&1 &
    echo $! >"$d/corosync.pid"
    for _ in $(seq 100); do
        ip netns exec "$(cm_ns "$i")" corosync-cfgtool -s >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    tail -20 "$d/corosync.log"
    fail "corosync on node $i did not come up"
}

# cm_daemon I: start node I's cmirrord in the foreground, kernel side on a UNIX socket.
cm_daemon() {
    local i=$1 d
    d=$(cm_dir "$i")
    ip netns exec "$(cm_ns "$i")" env CMIRRORD_KERNEL_SOCKET="$(cm_sock "$i")" CMIRRORD_PIDFILE="$d/lockfile" "$BIN/cmirrord" -f \
        >"$d/cmirrord.log" 2>&1 &
    echo $! >"$d/cmirrord.pid"
    wait_for_socket "$(cm_sock "$i")" 10
}

cm_pid() { cat "$(cm_dir "$1")/$2.pid"; }

# kc I COMMAND...: run kernel-side commands against node I (output on stdout).
kc() {
    local i=$1
    shift
    "$BIN/cmirrord-kclient" "$(cm_sock "$i")" "$@"
}

# expect_eq WHAT GOT WANT
expect_eq() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }

cm_teardown() {
    local i p
    for i in "${CM_NODES[@]}"; do
        for p in cmirrord corosync; do
            [ -f "$(cm_dir "$i")/$p.pid" ] && kill -9 "$(cm_pid "$i" $p)" 2>/dev/null
        done
    done
    sleep 0.2
    for i in "${CM_NODES[@]}"; do ip netns del "$(cm_ns "$i")" 2>/dev/null; done
    [ -n "$CM_HUB" ] && ip netns del "$CM_HUB" 2>/dev/null
    true
}

# cm_wait_members N: wait until every node's corosync sees N members.
cm_wait_members() {
    local want=$1 i n
    for i in "${CM_NODES[@]}"; do
        for _ in $(seq 150); do
            n=$(ip netns exec "$(cm_ns "$i")" corosync-quorumtool -s 2>/dev/null | sed -n 's/^Nodes: *//p')
            [ "${n:-0}" = "$want" ] && break
            sleep 0.1
        done
        [ "${n:-0}" = "$want" ] || fail "node $i sees ${n:-0} corosync members, not $want"
    done
}
