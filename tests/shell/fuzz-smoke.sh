#!/usr/bin/env bash
# Short smoke run of every cargo-fuzz target (libFuzzer + ASan, on the stable toolchain through
# RUSTC_BOOTSTRAP=1). Each target starts from its kept minimized corpus fuzz/corpus/<target>/
# plus its hand-written seeds fuzz/seeds/<target>/ and runs FUZZ_SECONDS (default 5); a crash,
# a leak, a placeholder target, or a target that ran no input fails the test.
# Long form and figures: docs/reliability.md "Fuzzing".
# timeout: 1200
. "$(dirname "$0")/../lib/common.sh"

secs=${FUZZ_SECONDS:-5}
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    note "installing cargo-fuzz (once per machine)"
    cargo install cargo-fuzz --locked --quiet || skip "cargo-fuzz could not be installed"
fi

cd "$TOP/fuzz" || fail "no fuzz/ directory"
placeholders=$(grep -l 'PLACEHOLDER' fuzz_targets/*.rs 2>/dev/null || true)
[ -z "$placeholders" ] || fail "placeholder fuzz targets left: $placeholders"

cargo fuzz build -O >"$TESTDIR/build.log" 2>&1 || { tail -30 "$TESTDIR/build.log"; fail "cargo fuzz build failed"; }

total=0
for t in $(cargo fuzz list); do
    corpus="$TESTDIR/corpus-$t"
    mkdir -p "$corpus"
    [ -d "corpus/$t" ] && cp -r "corpus/$t/." "$corpus/"
    [ -d "seeds/$t" ] && cp -r "seeds/$t/." "$corpus/"
    [ -n "$(ls -A "$corpus")" ] || fail "fuzz target $t has neither a corpus nor seeds"
    # lvmetad_dispatch replays whole request sequences: its inputs stay below 4 KiB.
    maxlen=1048576; [ "$t" = lvmetad_dispatch ] && maxlen=4096
    log="$TESTDIR/$t.log"
    if ! cargo fuzz run -O "$t" "$corpus" -- -max_total_time="$secs" -rss_limit_mb=2048 \
            -max_len="$maxlen" >"$log" 2>&1; then
        grep -E 'ERROR|panicked|SUMMARY' "$log" | head -20
        fail "fuzz target $t crashed (artifact under fuzz/artifacts/$t)"
    fi
    runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
    [ "${runs:-0}" -gt 0 ] || { tail -20 "$log"; fail "fuzz target $t ran no input (${runs:-no} executions reported)"; }
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    echo "fuzz $t: $runs executions in ${secs}s, $cov, no crash"
    total=$((total + runs))
done
echo "fuzz total: $total executions"
