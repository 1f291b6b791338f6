#!/bin/bash
# Guest side of tests/shell/dm-thin-lvm-vm.sh: thin pools, thin LVs and snapshots made by Debian's
# lvm2; our parser must read every pool and thin device exactly as dmsetup reports it.
. "$(dirname "$0")/../../lib/common.sh"
. "$TOP/tests/vm/guest/thin-lib.sh"
set -e
export LVM_SUPPRESS_FD_WARNINGS=1
read -r DISK _ <<<"$VM_DISKS"
[ -b "$DISK" ] || fail "needs one disk (-d 512M)"

# No udev and no dmeventd in the guest (the overlay makes this write harmless).
cat >/etc/lvm/lvm.conf <<'CONF'
devices { use_devicesfile = 0 obtain_device_list_from_udev = 0 }
activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }
CONF

pvcreate -q -y "$DISK"
vgcreate -q vg "$DISK"
# Pool 1: defaults (zeroing, discard passdown, queue when full), thin LVs and a thin snapshot.
lvcreate -q -y --type thin-pool -L 64M -n pool vg
lvcreate -q -y -V 128M -T vg/pool -n thin1
dd if=/dev/urandom of=/dev/vg/thin1 bs=1M count=4 oflag=direct status=none
lvcreate -q -y -s vg/thin1 -n snap1
lvchange -q -ay -K vg/snap1
lvcreate -q -y -V 64M -T vg/pool -n thin2
# Pool 2: other options (no zeroing, discards ignored, error when full), one thin LV, and a held
# metadata snapshot so the held-root field is exercised on an lvm pool.
lvcreate -q -y --type thin-pool -L 32M -Zn --discards ignore -n pool2 vg
lvchange -q --errorwhenfull y vg/pool2
lvcreate -q -y -V 16M -T vg/pool2 -n thin3
dd if=/dev/zero of=/dev/vg/thin3 bs=1M count=2 oflag=direct status=none
T reserve-metadata-snap vg-pool2-tpool

lvs -a -o lv_name,lv_attr,lv_size,pool_lv,origin,data_percent,transaction_id vg
dmsetup status | sort

agree "on lvm-made pools"
pools=$(dmsetup status | grep -c ' thin-pool ')
thins=$(dmsetup status | grep -c ' thin ')
check [ "$pools" = 2 ]
check [ "$thins" = 4 ]
check [ "$(T status | grep -c ' thin-pool transaction_id=')" = "$pools" ]
check [ "$(T status | grep -c ' thin mapped_sectors=')" = "$thins" ]
# The transaction id we read equals the one lvm recorded in its metadata.
for p in pool pool2; do
    ours=$(T status "vg-$p-tpool" | sed -n 's/.* transaction_id=\([0-9]*\) .*/\1/p')
    lvm_tid=$(lvs --noheadings -o transaction_id "vg/$p" | tr -d ' ')
    check [ "$ours" = "$lvm_tid" ]
    echo "vg/$p: transaction id $ours (lvm metadata: $lvm_tid)"
done
T status vg-pool2-tpool | grep -q 'held_metadata_root=[0-9]' || fail "held root on pool2 not seen"
T status vg-pool2-tpool | grep -q 'discards=ignore_discard no_space=error_if_no_space' \
    || fail "pool2 options not seen"
T release-metadata-snap vg-pool2-tpool
agree "after releasing the metadata snapshot"
vgchange -q -an vg >/dev/null
echo "lvm pools: all checks passed ($SECONDS s)"
