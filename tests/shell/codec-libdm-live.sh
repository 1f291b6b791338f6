#!/usr/bin/env bash
# The codec against the real libdevmapper, live: 1500 config texts generated afresh (a new seed
# each run, printed) are parsed by libdm through our oracle (tests/data/config/libdm_oracle.c,
# built here with cc against libdevmapper) in both duplicate-key modes, and by our codec; the
# accept/refuse decision and the tree writer's bytes must agree for every one. The stored
# vectors (common/src/config/tests_libdm_vectors.rs) stay the fixed check; this one keeps finding new
# inputs. SKIPs visibly without cc or libdevmapper's headers (Debian: libdevmapper-dev).
# timeout: 120
. "$(dirname "$0")/../lib/common.sh"
need_cmd cc
[ -f /usr/include/libdevmapper.h ] || skip "libdevmapper headers not installed (libdevmapper-dev)"
LIVE=$BIN/codec-libdm-live
[ -x "$LIVE" ] || fail "no $LIVE: cargo build --workspace --all-targets"

cc -O1 -Wall -o "$TESTDIR/oracle" "$TOP/tests/data/config/libdm_oracle.c" -ldevmapper \
    2>"$TESTDIR/cc.err" || { cat "$TESTDIR/cc.err"; fail "the oracle does not build against libdevmapper"; }
note "oracle linked against $(ldd "$TESTDIR/oracle" | awk '/libdevmapper/ {print $3}')"

seed=${LIBDM_LIVE_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
note "seed $seed (LIBDM_LIVE_SEED=$seed reproduces this run)"
mkdir -p "$TESTDIR/in"
"$LIVE" gen "$TESTDIR/in" "${LIBDM_LIVE_COUNT:-1500}" "$seed" || fail "generator failed"
# the oracle takes the files on its command line, in batches
find "$TESTDIR/in" -type f | sort | xargs -n 500 "$TESTDIR/oracle" >"$TESTDIR/oracle.out" \
    2>"$TESTDIR/oracle.err" || fail "the oracle failed: $(tail -3 "$TESTDIR/oracle.err")"
rc=0; "$LIVE" check "$TESTDIR/in" "$TESTDIR/oracle.out" >"$TESTDIR/check.out" || rc=$?
cat "$TESTDIR/check.out"
[ $rc = 0 ] || fail "our codec and libdevmapper disagree (seed $seed)"
grep -q 'libdm accepted [1-9]' "$TESTDIR/check.out" || fail "libdm accepted none of the inputs"
echo PASS
