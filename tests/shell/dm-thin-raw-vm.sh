#!/bin/bash
# Shows, on a real kernel in the QEMU guest: dm-thin-msg (common::dm) drives a thin pool made with
# dmsetup on loop devices: create thin, snapshot (origin suspended, pool and its data/metadata
# devices left running), delete; the transaction id seen by `dmsetup status` follows lvm2's rule;
# stale ids and refused messages are reported with the id unchanged; EEXIST/ENODATA replays pass;
# the status parser agrees with dmsetup field by field; the ioctl layer agrees with dmsetup.
# timeout: 240
. "$(dirname "$0")/../lib/common.sh"
need_root
need_cmd qemu-system-x86_64
[ -x "$BIN/dm-thin-msg" ] || fail "build first: no $BIN/dm-thin-msg"
"$TOP/tests/vm/run-in-vm.sh" -t 230 -e BIN="$BIN" -- "$TOP/tests/vm/guest/dm-thin-raw.sh"
