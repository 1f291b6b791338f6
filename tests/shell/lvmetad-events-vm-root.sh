#!/usr/bin/env bash
# Device events keep lvmetad current (QEMU tier, needs root): in a guest on Debian's kernel, busybox
# mdev runs our hook (scripts/lvmetad-mdev.in) for each block device event, as the kernel's
# hotplug helper: a loop device holding a PV is in lvmetad's cache within 1 s, gone within 1 s of
# its detach (median of 3; on a guest too slow for that, the 1 s limit is reported NOT SHOWN and
# 15 s checked); 50 PVs attached at once, and detached then attached at once while a full
# lvmetad-scan --cache runs, leave the cache equal to a full scan. Then our udev rule
# (scripts/69-lvmetad-scan.rules.in) under `udevadm test` (udev 252 has no `udevadm verify`), and
# real systemd-udevd running it for attaches and detaches with the same limit. About 2 minutes
# on 2 busy cores. See tests/vm/guest/events.sh.
# The PV images are made here with Debian's lvm (pvcreate under QEMU's TCG takes minutes).
# The binaries under test are a release build (what users run; a debug lvmetad-scan is slower
# per event under TCG): EVENTS_BIN (with EVENTS_RUN_DIR, their configured run directory, default
# /run/lvm), else the packaging tests' shared release build (tests/lib/pkg.sh pkg_build: built
# here once, reused by the pkg-* tests that run later).
# timeout: 900
. "$(dirname "$0")/../lib/common.sh"
need_root
need_cmd qemu-system-x86_64 socat jq losetup
[ -x /sbin/lvm ] || skip "needs Debian's lvm2 (to write the PV images)"
[ -e /dev/loop-control ] || skip "no loop devices"
if [ -n "${EVENTS_BIN:-}" ]; then
    EBIN=$EVENTS_BIN
    RUN_DIR=${EVENTS_RUN_DIR:-/run/lvm}
else
    . "$TOP/tests/lib/pkg.sh"
    pkg_build
    EBIN=$PKG_BUILD/target/release
    RUN_DIR=$PKG_RUN_DIR
fi
[ -x "$EBIN/lvmetad" ] && [ -x "$EBIN/lvmetad-scan" ] || fail "no $EBIN/lvmetad or lvmetad-scan: build first"
N=${STORM:-50}

# N sparse 8 MiB PV images, the first three in VG vgstorm with an LV; our loop devices are
# attached only while lvm writes them.
IMGDIR=$TESTDIR/pvs
mkdir -p "$IMGDIR"
LOOPS=()
detach_ours() { local d; for d in "${LOOPS[@]}"; do losetup -d "$d"; done; LOOPS=(); }
at_exit detach_ours
for i in $(seq "$N"); do
    truncate -s 8M "$IMGDIR/pv$i.img"
    LOOPS+=("$(losetup -f --show "$IMGDIR/pv$i.img")") || fail "losetup"
done
filter=$(printf '"a|^%s$|", ' "${LOOPS[@]}")
cfg="global{activation=0} devices{use_devicesfile=0 obtain_device_list_from_udev=0 global_filter=[ $filter \"r|.*|\" ]}"
lvmq() { lvm "$1" --config "$cfg" -q "${@:2}" 2>&1 | grep -vE 'leaked on|Activation disabled|device-mapper|mapper/control|libdevmapper' || true; }
lvmq pvcreate -y "${LOOPS[@]}" >/dev/null
lvmq vgcreate vgstorm "${LOOPS[0]}" "${LOOPS[1]}" "${LOOPS[2]}" >/dev/null
lvmq lvcreate -Zn -an -L 12m -n lv0 vgstorm >/dev/null
[ "$(lvm pvs --config "$cfg" --noheadings -o pv_name 2>/dev/null | wc -l)" = "$N" ] || fail "pvcreate did not make $N PVs"
detach_ours

"$TOP/tests/vm/run-in-vm.sh" -t 880 -m 1024 -e "BIN=$EBIN" -e "RUN_DIR=$RUN_DIR" -e "TOP=$TOP" -e "IMGDIR=$IMGDIR" \
    -e "STORM=$N" -- "$TOP/tests/vm/guest/events.sh"
