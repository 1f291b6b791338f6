#!/bin/bash
# Guest side of tests/shell/cmirrord-vm-root.sh: the real kernel's dm-log-userspace served by
# our cmirrord over the netlink connector, with a single-node corosync in the guest.
# Needs IN_VM=1, CMIRRORD=<path>, three disks (two mirror legs and a log device).
# Shows: `mirror` tables with userspace clustered-core and clustered-disk logs (built with
# dmsetup: lvm 2.03 never emits them) load, resync completes, writes reach both legs, the disk
# log gets the dm-log header, suspend/resume and a table reload (same uuid, new luid) work,
# remove works, and cmirrord exits on SIGTERM once no log is left.
set -u
[ "${IN_VM:-0}" = 1 ] || { echo "guest-cmirrord.sh: run me inside run-in-vm.sh" >&2; exit 2; }
read -r L1 L2 LOG _ <<<"$VM_DISKS"
[ -b "${LOG:-}" ] || { echo "guest-cmirrord.sh: needs three disks" >&2; exit 2; }
W=/tmp/cm
mkdir -p "$W"
fails=0
ok() { echo "PASS: $* [$(date +%T)]"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
SECTORS=32768 # 16 MiB legs, 1024-sector regions: 32 regions

ip link set lo up
cat >"$W/corosync.conf" <<'CONF'
totem {
    version: 2
    cluster_name: vmcm
    transport: knet
    crypto_cipher: none
    crypto_hash: none
}
nodelist {
    node {
        ring0_addr: 127.0.0.1
        nodeid: 1
        name: node1
    }
}
quorum {
    provider: corosync_votequorum
}
logging {
    to_stderr: yes
    to_syslog: no
}
CONF
corosync -f -c "$W/corosync.conf" >"$W/corosync.log" 2>&1 &
for _ in $(seq 100); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 0.2; done
check "corosync up" corosync-cfgtool -s

"$CMIRRORD" -f >"$W/cmirrord.log" 2>&1 &
CM=$!
sleep 0.5
check "cmirrord running" kill -0 "$CM"

# wait_sync NAME: until the mirror status shows N/N regions in sync (max 60 s).
wait_sync() {
    local s
    for _ in $(seq 300); do
        s=$(dmsetup status "$1" | awk '{print $7}')
        [ -n "$s" ] && [ "${s%/*}" = "${s#*/}" ] && { echo "  $1 in sync: $s"; return 0; }
        sleep 0.2
    done
    echo "  $1 status: $(dmsetup status "$1")"
    return 1
}

legs_match() {
    cmp -s <(head -c 1M "$L1") "$W/pat" && cmp -s <(head -c 1M "$L2") "$W/pat"
}

dd if=/dev/urandom of="$W/pat" bs=1M count=1 status=none
for kind in core disk; do
    U=LVM-cmirrordvmtest-$kind-000000000000000000000000000000000000001
    if [ $kind = core ]; then
        log="userspace 3 $U clustered-core 1024"
    else
        log="userspace 4 $U clustered-disk $LOG 1024"
    fi
    table="0 $SECTORS mirror $log 2 $L1 0 $L2 0 1 handle_errors"
    echo "=== clustered-$kind: $table"
    dd if=/dev/zero of="$L1" bs=1M count=1 oflag=direct status=none
    dd if=/dev/zero of="$L2" bs=1M count=1 oflag=direct status=none
    if ! timeout 60 dmsetup create cm --table "$table"; then
        bad "clustered-$kind mirror created"
        dmesg | tail -20
        continue
    fi
    ok "clustered-$kind mirror created"
    echo "  status: $(dmsetup status cm)"
    check "clustered-$kind resync completes" wait_sync cm
    dd if="$W/pat" of=/dev/mapper/cm bs=1M oflag=direct status=none
    check "clustered-$kind writes reach both legs" legs_match
    if [ $kind = disk ]; then
        devno="$((16#$(stat -c %t "$LOG"))):$((16#$(stat -c %T "$LOG")))"
        check "disk log status names the log device ($devno)" bash -c "dmsetup status cm | grep -q '3 clustered-disk $devno A\$'"
        magic=$(od -An -tx1 -N16 "$LOG" | tr -d ' \n')
        # "MiRr" magic, version 2, nr_regions 32, little-endian
        check "disk log header is MiRr v2 with 32 regions ($magic)" test "$magic" = 7252694d020000002000000000000000
    fi
    check "clustered-$kind suspend" dmsetup suspend cm
    check "clustered-$kind resume" dmsetup resume cm
    # A reload makes a second log instance with the same uuid (new luid) in the inactive slot;
    # the disk log's new instance reads back what the old one wrote (no resync needed).
    [ $kind = disk ] || { check "clustered-$kind remove" dmsetup remove cm; continue; }
    check "clustered-$kind reload" dmsetup reload cm --table "$table"
    check "clustered-$kind resume after reload" dmsetup resume cm
    check "clustered-$kind in sync after reload" wait_sync cm
    check "clustered-$kind data intact after reload" cmp -s <(head -c 1M /dev/mapper/cm) "$W/pat"
    check "clustered-$kind remove" dmsetup remove cm
done
grep -c . "$W/cmirrord.log" >/dev/null && { echo "--- cmirrord log"; tail -20 "$W/cmirrord.log"; }
kill -TERM "$CM"
for _ in $(seq 50); do kill -0 "$CM" 2>/dev/null || break; sleep 0.1; done
check "cmirrord exits on SIGTERM with no logs left" bash -c "! kill -0 $CM 2>/dev/null"
corosync-cfgtool -H --force >/dev/null 2>&1 || true
echo "guest-cmirrord: $fails failure(s)"
[ "$fails" = 0 ]
