#!/bin/bash
# Shows dm-thin-msg's command-line contract on any host (no device-mapper needed): help and
# version, usage errors exit 2, `parse` prints every field of thin-pool and thin status texts and
# refuses malformed ones, and without a usable /dev/mapper/control it says so and exits 1.
# timeout: 30
. "$(dirname "$0")/../lib/common.sh"
T=$BIN/dm-thin-msg
[ -x "$T" ] || fail "build first: no $T"

"$T" --help | grep -q '^usage: dm-thin-msg' || fail "--help"
"$T" -V | grep -q '^dm-thin-msg [0-9]' || fail "-V"
for bad in "" "frobnicate" "--bogus status" "create-thin pool" "create-thin pool 16777216" \
    "parse md 1" "send pool 'create_thin x'"; do
    rc=0
    eval "\"\$T\" $bad" >/dev/null 2>"$TESTDIR/err" || rc=$?
    [ "$rc" = 2 ] || fail "dm-thin-msg $bad: exit $rc, expected 2"
    grep -q -- '--help for usage' "$TESTDIR/err" || fail "dm-thin-msg $bad: no usage hint"
done

out=$("$T" parse thin-pool '2 112/1024 128/1024 - rw discard_passdown queue_if_no_space - 256 ')
check [ "$out" = "transaction_id=2 used_metadata_blocks=112 total_metadata_blocks=1024 used_data_blocks=128 total_data_blocks=1024 held_metadata_root=- mode=rw discards=discard_passdown no_space=queue_if_no_space needs_check=no metadata_low_watermark=256" ]
out=$("$T" parse thin-pool '9 1/2 3/4 77 out_of_data_space ignore_discard error_if_no_space needs_check')
check [ "$out" = "transaction_id=9 used_metadata_blocks=1 total_metadata_blocks=2 used_data_blocks=3 total_data_blocks=4 held_metadata_root=77 mode=out_of_data_space discards=ignore_discard no_space=error_if_no_space needs_check=yes metadata_low_watermark=-" ]
check [ "$("$T" parse thin-pool Fail)" = "status=Fail" ]
check [ "$("$T" parse thin 8192 8191)" = "mapped_sectors=8192 highest_mapped_sector=8191" ]
check [ "$("$T" parse thin 0 -)" = "mapped_sectors=0 highest_mapped_sector=-" ]
rc=0; "$T" parse thin-pool '2 112/1024 128/1024 - rx' 2>"$TESTDIR/err" || rc=$?
check [ "$rc" = 1 ]
check grep -q 'thin-pool status: bad mode: "rx"' "$TESTDIR/err"

if [ ! -c /dev/mapper/control ]; then
    rc=0; "$T" version 2>"$TESTDIR/err" || rc=$?
    check [ "$rc" = 1 ]
    check grep -q 'cannot open /dev/mapper/control' "$TESTDIR/err"
    note "no device-mapper here: refused clearly"
fi
