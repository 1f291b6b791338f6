#!/bin/bash
# Guest side of tests/shell/dm-thin-raw-vm.sh: a thin pool made with dmsetup on loop devices, driven
# through dm-thin-msg (common::dm), checked against dmsetup at every step.
. "$(dirname "$0")/../../lib/common.sh"
. "$TOP/tests/vm/guest/thin-lib.sh"
set -e

echo "== the ioctl layer against dmsetup"
drv=$(dmsetup version | sed -n 's/^Driver version: *//p')
check [ "$(T version)" = "$drv" ]
echo "driver version $drv"

truncate -s 8M "$TESTDIR/meta.img"
truncate -s 128M "$TESTDIR/data.img"
LMETA=$(losetup -f --show "$TESTDIR/meta.img")
LDATA=$(losetup -f --show "$TESTDIR/data.img")
at_exit "losetup -d $LMETA $LDATA"
# Linear dm devices on the loops, so the pool's metadata and data devices have a dm state to see.
dmsetup create tmeta --table "0 16384 linear $LMETA 0"
dmsetup create tdata --table "0 262144 linear $LDATA 0"
dmsetup create pool --table "0 262144 thin-pool /dev/mapper/tmeta /dev/mapper/tdata 128 0 1 skip_block_zeroing"

# create/load/resume, suspend (noflush, skip lockfs), info, table, message, remove through ours.
T create --uuid TEST-zero-1 lin "0 2048 zero" "2048 2048 error" >/dev/null
check [ "$(dmsetup table lin | sed 's/ *$//')" = "$(printf '0 2048 zero\n2048 2048 error')" ]
check [ "$(dmsetup info -c --noheadings -o uuid lin)" = TEST-zero-1 ]
check [ "$(T table lin)" = "$(printf '0 2048 zero\n2048 2048 error')" ]
T suspend --noflush --nolockfs lin
check [ "$(dmsetup info -c --noheadings -o suspended lin)" = Suspended ]
T info lin | grep -q 'state=suspended read_only=false live_table=true' || fail "info does not show the suspend"
T resume lin
check [ "$(dmsetup info -c --noheadings -o suspended lin)" = Active ]
check [ "$(T table pool | sed 's/ *$//')" = "$(dmsetup table pool | sed 's/ *$//')" ]
T list | grep -q ' lin$' || fail "list misses lin"
check [ "$(T list | wc -l)" = "$(dmsetup ls | wc -l)" ]
T remove lin
check [ -z "$(dmsetup ls | grep -w lin || true)" ]
T info lin >/dev/null 2>&1 && fail "info of a removed device succeeded"
# A table and status larger than the first 16 KiB buffer: the answer comes after growing it.
lines=()
for i in $(seq 0 1199); do lines+=("$((i * 8)) 8 zero"); done
T create big "${lines[@]}" >/dev/null
check [ "$(T table big | wc -l)" = 1200 ]
check [ "$(T table big | sed 's/ *$//' | md5sum)" = "$(dmsetup table big | sed 's/ *$//' | md5sum)" ]
T remove big
echo "create/load/suspend/resume/info/table/list/remove agree with dmsetup; 1200-line table read whole"

echo "== transactions on the raw pool ($SECONDS s)"
agree "on a fresh pool"
expect_tid pool 0
T create-thin pool 0
expect_tid pool 1
dmsetup create thin0 --table "0 32768 thin /dev/mapper/pool 0"
dd if=/dev/urandom of=/dev/mapper/thin0 bs=1M count=4 oflag=direct status=none
agree "after writing to thin0"

echo "-- snapshot of the active thin0: origin suspended, pool posted to without suspending it"
during=$TESTDIR/during
T create-snap --origin thin0 --exec "dmsetup info -c --noheadings -o name,suspended tmeta tdata pool thin0 >$during" pool 1 0
cat "$during"
check grep -qx 'thin0:Suspended' "$during"
check grep -qx 'pool:Active' "$during"
check grep -qx 'tmeta:Active' "$during"
check grep -qx 'tdata:Active' "$during"
check [ "$(dmsetup info -c --noheadings -o suspended thin0)" = Active ]
T stack pool
check [ "$(T stack pool | grep -c ' active$')" = 3 ]
expect_tid pool 2
dmsetup create snap1 --table "0 32768 thin /dev/mapper/pool 1"
cmp /dev/mapper/thin0 /dev/mapper/snap1 || fail "snapshot differs from its origin"
echo "snapshot reads the same as its origin"
# Contrast: nothing queued, so the origin-only suspend really suspends the pool (not its children).
T --exec "dmsetup info -c --noheadings -o name,suspended tmeta tdata pool >$during" send pool
cat "$during"
check grep -qx 'pool:Suspended' "$during"
check grep -qx 'tmeta:Active' "$during"
check [ "$(dmsetup info -c --noheadings -o suspended pool)" = Active ]
expect_tid pool 2
agree "after the snapshot"

echo "-- ($SECONDS s) a stale transaction id is refused and reported; nothing is sent"
rc=0; T create-thin --tid 7 pool 5 2>"$TESTDIR/err" || rc=$?
cat "$TESTDIR/err"
check [ "$rc" = 3 ]
check grep -q 'transaction_id is 2, while expected 7' "$TESTDIR/err"
expect_tid pool 2
dmsetup message pool 0 "delete 5" 2>/dev/null && fail "thin 5 exists: the stale request was sent"
echo "-- the kernel's refusal of a stale set_transaction_id is reported"
rc=0; T set-transaction-id pool 7 8 2>"$TESTDIR/err" || rc=$?
cat "$TESTDIR/err"
check [ "$rc" = 4 ]
check grep -q 'refused "set_transaction_id 7 8": Invalid argument' "$TESTDIR/err"
expect_tid pool 2

echo "-- a replay of a committed transaction sends nothing"
T create-thin --tid 1 pool 9 | tee "$TESTDIR/out"
check grep -q 'transaction 2 already committed; nothing sent' "$TESTDIR/out"
dmsetup message pool 0 "delete 9" 2>/dev/null && fail "thin 9 was created by a replay"
expect_tid pool 2

echo "-- a failed message leaves the transaction id unchanged"
rc=0; T create-snap pool 3 77 2>"$TESTDIR/err" || rc=$?
cat "$TESTDIR/err"
check [ "$rc" = 4 ]
check grep -q 'refused "create_snap 3 77"' "$TESTDIR/err"
expect_tid pool 2

echo "-- create_thin EEXIST and delete ENODATA count as success"
T create-thin pool 0
expect_tid pool 3
T delete pool 42
expect_tid pool 4
T send pool "create_thin 10" "create_snap 11 10" "create_thin 12" | tee "$TESTDIR/out"
check grep -q 'transaction_id 4 -> 5: create_thin 10, create_snap 11 10, create_thin 12, set_transaction_id 4 5' "$TESTDIR/out"
expect_tid pool 5

echo "-- delete the snapshot ($SECONDS s)"
dmsetup remove snap1
T delete pool 1
expect_tid pool 6
dmsetup create snapx --table "0 32768 thin /dev/mapper/pool 1" 2>/dev/null && fail "thin 1 still exists"
dmsetup remove snapx 2>/dev/null || true

echo "-- metadata snapshot: reserve shows a held root, release clears it"
T reserve-metadata-snap pool
held=$(dmsetup status pool | awk '{ print $7 }')
check [ "$held" != - ]
T status pool | grep -q "held_metadata_root=$held " || fail "held root $held not parsed"
agree "with a held metadata root ($held)"
T release-metadata-snap pool
check [ "$(dmsetup status pool | awk '{ print $7 }')" = - ]
expect_tid pool 6

echo "-- a read-only pool is refused before anything is sent"
dmsetup remove thin0
dmsetup suspend pool
dmsetup load pool --table "0 262144 thin-pool /dev/mapper/tmeta /dev/mapper/tdata 128 0 2 skip_block_zeroing read_only"
dmsetup resume pool
rc=0; T create-thin pool 20 2>"$TESTDIR/err" || rc=$?
cat "$TESTDIR/err"
check [ "$rc" = 5 ]
agree "on a read-only pool"
dmsetup remove pool tdata tmeta
echo "raw pool: all checks passed ($SECONDS s)"
