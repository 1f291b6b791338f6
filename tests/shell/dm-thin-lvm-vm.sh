#!/bin/bash
# Shows, on a real kernel in the QEMU guest: the thin-pool and thin status parsers of common::dm
# read every pool and thin device Debian's lvm2 makes (lvcreate --type thin-pool, thin LVs,
# snapshots, a pool with other options and a held metadata snapshot), agreeing with dmsetup status
# field by field and with lvm's recorded transaction ids.
# timeout: 180
. "$(dirname "$0")/../lib/common.sh"
need_root
need_cmd qemu-system-x86_64 lvm
[ -x "$BIN/dm-thin-msg" ] || fail "build first: no $BIN/dm-thin-msg"
"$TOP/tests/vm/run-in-vm.sh" -t 170 -d 256M -e BIN="$BIN" -- "$TOP/tests/vm/guest/dm-thin-lvm.sh"
