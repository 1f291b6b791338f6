#!/usr/bin/env bash
# Real clients on a real kernel (QEMU tier, needs root): Debian's lvm2 tools with
# LVM_LVMPOLLD_SOCKET pointing at OUR lvmpolld (-B /sbin/lvm) in a guest with device-mapper:
# a background pvmove of a 64 MiB LV (seen in progress through `lvmpolld --dump`), data intact;
# pvmove --abort; lvconvert --merge of a snapshot. See tests/vm/guest-lvmpolld.sh.
# timeout: 170
. "$(dirname "$0")/../lib/common.sh"
need_root
need_cmd qemu-system-x86_64
[ -x /sbin/lvm ] || skip "needs Debian's lvm2"
[ -x "$BIN/lvmpolld" ] || fail "no $BIN/lvmpolld: build first"
"$TOP/tests/vm/run-in-vm.sh" -t 160 -d 160M -d 160M -d 160M -e "LVMPOLLD=$BIN/lvmpolld" \
    -- "$TOP/tests/vm/guest-lvmpolld.sh"
