#!/usr/bin/env bash
# Short smoke run of every cargo-fuzz target (libFuzzer + ASan, on the stable toolchain through
# RUSTC_BOOTSTRAP=1). Each target starts from its seeds in fuzz/seeds/<target>/ and runs
# FUZZ_SECONDS (default 10); a crash, a leak or a placeholder target fails the test.
# Long form (the issue's 10^7 executions): FUZZ_SECONDS=3600 bash tests/shell/fuzz-smoke.sh
# timeout: 1200
. "$(dirname "$0")/../lib/common.sh"

secs=${FUZZ_SECONDS:-10}
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    note "installing cargo-fuzz (once per machine)"
    cargo install cargo-fuzz --locked --quiet || skip "cargo-fuzz could not be installed"
fi

cd "$TOP/fuzz" || fail "no fuzz/ directory"
placeholders=$(grep -l 'PLACEHOLDER' fuzz_targets/*.rs 2>/dev/null)
[ -z "$placeholders" ] || fail "placeholder fuzz targets left: $placeholders"

cargo fuzz build -O >"$TESTDIR/build.log" 2>&1 || { tail -30 "$TESTDIR/build.log"; fail "cargo fuzz build failed"; }

total=0
for t in $(cargo fuzz list); do
    corpus="$TESTDIR/corpus-$t"
    mkdir -p "$corpus"
    [ -d "seeds/$t" ] && cp -r "seeds/$t/." "$corpus/"
    log="$TESTDIR/$t.log"
    if ! cargo fuzz run -O "$t" "$corpus" -- -max_total_time="$secs" -rss_limit_mb=2048 \
            -max_len=1048576 >"$log" 2>&1; then
        grep -E 'ERROR|panicked|SUMMARY' "$log" | head -20
        fail "fuzz target $t crashed (artifact under fuzz/artifacts/$t)"
    fi
    runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
    echo "fuzz $t: ${runs:-?} executions in ${secs}s, no crash"
    total=$((total + ${runs:-0}))
done
echo "fuzz total: $total executions"
