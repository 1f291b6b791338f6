#!/bin/bash
# Shows that the QEMU tier works: tests/vm/run-in-vm.sh boots Debian's kernel, the guest sees the
# host tree and a -d disk of the asked size, device-mapper answers, -e reaches the command, and the
# command's output and exit status come back to the host.
# timeout: 120
. "$(dirname "$0")/../lib/common.sh"
need_root
need_cmd qemu-system-x86_64

out=$TESTDIR/out
rc=0
"$TOP/tests/vm/run-in-vm.sh" -t 100 -d 48M -e PROBE='two words' -- bash -c '
    echo "probe=$PROBE in_vm=$IN_VM disks=$VM_DISKS"
    echo "disk-bytes=$(blockdev --getsize64 /dev/vda)"
    echo "dm=$(dmsetup version | sed -n "s/^Driver version: *//p")"
    test -f "$0" && echo "sees-host-tree=yes"
    exit 7' "$TOP/tests/vm/run-in-vm.sh" >"$out" 2>"$TESTDIR/err" || rc=$?
cat "$out" "$TESTDIR/err"
check [ "$rc" = 7 ]
check grep -qx 'probe=two words in_vm=1 disks=/dev/vda' "$out"
check grep -qx 'disk-bytes=50331648' "$out"
check grep -q '^dm=4\.' "$out"
check grep -qx 'sees-host-tree=yes' "$out"
check grep -q '^run-in-vm: exit 7; guest boot-to-command' "$TESTDIR/err"
