#!/usr/bin/env bash
# The real kernel (QEMU tier, root): dm-log-userspace mirrors with clustered-core and
# clustered-disk logs, created with dmsetup, served by OUR cmirrord through the netlink
# connector and a single-node corosync in the guest: resync, writes on both legs, disk log
# header, suspend/resume, reload (same uuid, new luid), remove. See tests/vm/guest-cmirrord.sh.
# timeout: 170
. "$(dirname "$0")/../lib/common.sh"
need_root
need_cmd qemu-system-x86_64 corosync
[ -x "$BIN/cmirrord" ] || fail "no $BIN/cmirrord: build first"
"$TOP/tests/vm/run-in-vm.sh" -t 160 -d 16M -d 16M -d 4M -e "CMIRRORD=$BIN/cmirrord" \
    -- "$TOP/tests/vm/guest-cmirrord.sh"
