#!/usr/bin/env bash
# Bad input against running lvmetad and lvmpolld (common/src/bin/hostile-client/): truncated
# messages, no terminator then disconnect, a 100 MB request, invalid UTF-8, NUL bytes, 100 000-deep
# nesting, random bytes, unknown requests, and every field of every request given every wrong type
# and extreme number. Each input gets an error reply or a closed connection (or, where the request
# is still valid, OK), a second client is served after each one, and the dump is unchanged after
# every refused input. The tally is printed ("N inputs ...").
# timeout: 150
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/lvmetad.sh"
. "$TOP/tests/lib/lvmpolld.sh"
need_cmd socat
HOSTILE=$TOP/target/debug/hostile-client
[ -x "$HOSTILE" ] || fail "no $HOSTILE: cargo build --workspace --all-targets"

start_lvmetad
"$HOSTILE" badinput lvmetad "$SOCK" || fail "lvmetad: bad input handled wrongly"
kill -0 "$LVMETAD_PID" || fail "lvmetad died"
grep -c 'panicked' "$TESTDIR/lvmetad.log" | grep -qx 0 || fail "lvmetad handler panicked: $(grep -m3 panicked "$TESTDIR/lvmetad.log")"

polld_start bad "$BIN/lvmpolld"
"$HOSTILE" badinput lvmpolld "$TESTDIR/bad.socket" || fail "lvmpolld: bad input handled wrongly"
kill -0 "$PID_bad" || fail "lvmpolld died"
grep -c 'panicked' "$TESTDIR/bad.log" | grep -qx 0 || fail "lvmpolld handler panicked"
echo PASS
