#!/bin/bash
# Guest side of the cluster mode (tests/vm/cluster.sh): the job run-in-vm.sh starts in each guest.
# It brings up the guest's NIC (VC_ADDR on eth0), says "ready", then runs the command files the
# host drops into $VM_OUT/cmd/ (1.sh, 2.sh, ... in order; each one's output and exit status come
# back as N.out and N.rc, the status last by rename), until $VM_OUT/cmd/stop appears.
set -u
[ "${IN_VM:-0}" = 1 ] || { echo "guest-agent.sh: run me inside run-in-vm.sh" >&2; exit 2; }
Q=$VM_OUT/cmd
mkdir -p "$Q"
hostname "node${VC_NODE:-0}"
if [ -n "${VC_ADDR:-}" ]; then
    for _ in $(seq 100); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
    ip addr add "$VC_ADDR" dev eth0 || exit 3
    ip link set eth0 up || exit 3
fi
echo "$(date +%s)" >"$VM_OUT/ready"
n=1
while [ ! -e "$Q/stop" ]; do
    if [ -e "$Q/$n.sh" ]; then
        bash "$Q/$n.sh" >"$Q/$n.out" 2>&1 </dev/null
        echo $? >"$Q/$n.rc.new"
        mv "$Q/$n.rc.new" "$Q/$n.rc"
        n=$((n + 1))
    else
        sleep 0.1
    fi
done
