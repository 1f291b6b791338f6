# Cluster mode of the QEMU tier (host side; source it, after tests/lib/common.sh or on its own).
#
# N guests booted from the same cached kernel by run-in-vm.sh, each on a tap device of one bridge
# inside a network namespace made here (the guests' addresses exist only in there), with the same
# raw images attached to every guest as shared disks (no image locking, cache=none). Every
# guest runs guest-agent.sh, which takes commands from files in its run directory, so the host can
# drive the guests after boot, kill one guest's QEMU hard and boot it again. See tests/vm/README.md.
#
#   vc_require                 skip (exit 77) where QEMU, tap devices or netns are missing
#   vc_setup N DIR             netns + bridge + N taps; run directories under DIR
#   vc_disk FILE SIZE          a fresh sparse image, attached to every guest booted afterwards
#   vc_boot I / vc_wait I      boot guest I (background) / wait until its agent is ready
#   vc_run I SCRIPT [SECS]     run SCRIPT (bash) in guest I; its output, its status (124: timeout)
#   vc_kill I                  SIGKILL guest I's QEMU
#   vc_down                    kill every guest and remove the namespace (also from a trap)
# Variables: VC_TAG (name prefix, default cmc$$), VC_MEM (MiB, 512), VC_TIMEOUT (s, each VM's
# wall-clock limit, 900), VC_ENV (array of VAR=VALUE for every guest), VC_NET (10.99.0; guest I
# is .I/24). Guests get VC_NODE=I and VC_ADDR.

VC_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VC_TAG=${VC_TAG:-cmc$$}
VC_NS=${VC_TAG}
VC_MEM=${VC_MEM:-512}
VC_TIMEOUT=${VC_TIMEOUT:-900}
VC_NET=${VC_NET:-10.99.0}
VC_DIR=
VC_N=0
VC_IMAGES=()
VC_PIDS=()
declare -p VC_ENV >/dev/null 2>&1 || VC_ENV=()

_vc_skip() { echo "SKIP: $*"; exit 77; }
_vc_fail() { echo "FAIL: $*" >&2; exit 1; }

vc_require() {
    [ "$(id -u)" = 0 ] || _vc_skip "cluster VMs need root"
    command -v qemu-system-x86_64 >/dev/null || _vc_skip "needs qemu-system-x86_64"
    command -v ip >/dev/null || _vc_skip "needs ip (iproute2)"
    [ -c /dev/net/tun ] || _vc_skip "no /dev/net/tun (tap devices)"
    ip netns add "${VC_TAG}p" 2>/dev/null || _vc_skip "cannot create network namespaces"
    ip netns del "${VC_TAG}p"
}

# vc_setup N DIR
vc_setup() {
    local i
    VC_N=$1
    VC_DIR=$2
    mkdir -p "$VC_DIR"
    # The kernel is fetched (once) out here: the namespace the guests boot in has no network.
    "$VC_HERE/run-in-vm.sh" -P || _vc_fail "run-in-vm.sh cannot prepare its kernel cache"
    ip netns add "$VC_NS" || _vc_fail "cannot create netns $VC_NS"
    ip -n "$VC_NS" link set lo up
    ip -n "$VC_NS" link add br0 type bridge
    ip -n "$VC_NS" link set br0 up
    for ((i = 1; i <= VC_N; i++)); do
        ip -n "$VC_NS" tuntap add dev "tap$i" mode tap || _vc_fail "cannot create tap$i"
        ip -n "$VC_NS" link set "tap$i" master br0 up
    done
}

# vc_disk FILE SIZE: a fresh sparse shared image (attached in the order of the calls).
vc_disk() {
    rm -f "$1"
    truncate -s "$2" "$1"
    VC_IMAGES+=("$1")
}

vc_gdir() { echo "$VC_DIR/g$1"; }

# vc_boot I: start guest I in the background (its run-in-vm.sh output goes to gI.log).
vc_boot() {
    local i=$1 d args=() img e
    d=$(vc_gdir "$i")
    rm -rf "$d/cmd" "$d/ready" "$d/seq"
    mkdir -p "$d/cmd"
    for img in "${VC_IMAGES[@]}"; do args+=(-S "$img"); done
    for e in "${VC_ENV[@]}"; do args+=(-e "$e"); done
    ip netns exec "$VC_NS" "$VC_HERE/run-in-vm.sh" -o "$d" -t "$VC_TIMEOUT" -c 1 -m "$VC_MEM" \
        -n "tap$i,52:54:00:cc:00:$(printf %02x "$i")" -M virtio_net "${args[@]}" \
        -e "VC_NODE=$i" -e "VC_ADDR=$VC_NET.$i/24" -- "$VC_HERE/guest-agent.sh" \
        >"$VC_DIR/g$i.log" 2>&1 &
    VC_PIDS[$i]=$!
}

# vc_wait I [SECS]: until guest I's agent is ready (fails if the VM ended first).
vc_wait() {
    local i=$1 n=$((${2:-120} * 10)) k
    for ((k = 0; k < n; k++)); do
        [ -e "$(vc_gdir "$i")/ready" ] && return 0
        kill -0 "${VC_PIDS[$i]}" 2>/dev/null || { tail -20 "$VC_DIR/g$i.log" >&2; _vc_fail "guest $i ended during boot"; }
        sleep 0.1
    done
    _vc_fail "guest $i not ready after ${2:-120} s"
}

# vc_run I SCRIPT [SECS]: run SCRIPT with bash in guest I; prints its output, returns its status.
vc_run() {
    local i=$1 script=$2 secs=${3:-60} d n k
    d=$(vc_gdir "$i")/cmd
    n=$(($(cat "$d/../seq" 2>/dev/null || echo 0) + 1))
    echo "$n" >"$d/../seq"
    printf '%s\n' "$script" >"$d/$n.sh.part"
    mv "$d/$n.sh.part" "$d/$n.sh"
    for ((k = 0; k < secs * 20; k++)); do
        if [ -e "$d/$n.rc" ]; then
            cat "$d/$n.out"
            return "$(cat "$d/$n.rc")"
        fi
        kill -0 "${VC_PIDS[$i]}" 2>/dev/null || { echo "vc_run: guest $i is gone" >&2; return 125; }
        sleep 0.05
    done
    cat "$d/$n.out" 2>/dev/null
    echo "vc_run: guest $i: command $n still running after $secs s" >&2
    return 124
}

# _vc_qemu_pid I: guest I's QEMU process, if it is still the one this run directory started.
_vc_qemu_pid() {
    local d p
    d=$(vc_gdir "$1")
    p=$(cat "$d/qemu.pid" 2>/dev/null) || return 1
    [ -n "$p" ] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "path=$d," || return 1
    echo "$p"
}

# vc_kill I: SIGKILL guest I's QEMU (a node that dies, no shutdown of anything) and reap it.
vc_kill() {
    local i=$1 p
    p=$(_vc_qemu_pid "$i") || _vc_fail "guest $i has no QEMU to kill"
    kill -9 "$p"
    wait "${VC_PIDS[$i]}" 2>/dev/null || true # its status is the kill's
    VC_PIDS[$i]=
}

vc_down() {
    local i p
    for ((i = 1; i <= VC_N; i++)); do
        p=$(_vc_qemu_pid "$i") && kill -9 "$p" 2>/dev/null
        [ -z "${VC_PIDS[$i]:-}" ] || wait "${VC_PIDS[$i]}" 2>/dev/null || true
    done
    [ -z "$VC_DIR" ] || rm -f "${VC_IMAGES[@]}"
    ip netns del "$VC_NS" 2>/dev/null
    true
}
