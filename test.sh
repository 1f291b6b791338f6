#!/usr/bin/env bash
# The whole test suite: build, cargo tests, and the shell tests under tests/shell/.
#   ./test.sh              everything
#   ./test.sh NAME...      only the shell tests whose file name contains NAME (no cargo tests)
# Ends with the line "N passed, N failed, N skipped" and exits non-zero on any failure.
# As root it installs the Debian packages the tests need (tests/lib/deps.sh).
set -u
cd "$(dirname "$0")" || exit 2
TOP=$(pwd)
. tests/lib/deps.sh

passed=0 failed=0 skipped=0
failures=()
T0=$(date +%s)

# shellcheck disable=SC2086
ensure_packages $TEST_PACKAGES
command -v cargo >/dev/null || { echo "cargo not found" >&2; exit 2; }

echo "== build"
if ! cargo build --workspace --all-targets --quiet; then
    echo "0 passed, 1 failed"; exit 1
fi

if [ $# -eq 0 ]; then
    echo "== cargo test"
    log=$(mktemp)
    # A hung cargo test must not hang the suite: CARGO_TEST_TIMEOUT seconds (default 900) at most.
    timeout -k 10 "${CARGO_TEST_TIMEOUT:-900}" cargo test --workspace --quiet >"$log" 2>&1
    crc=$?
    grep -E '^(test result|failures:|    [a-z_:]+$|---- )' "$log"
    while read -r p f; do
        passed=$((passed + p)); failed=$((failed + f))
    done < <(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$log")
    if [ $crc = 124 ] || [ $crc = 137 ]; then
        failed=$((failed + 1)); failures+=("cargo test (timed out after ${CARGO_TEST_TIMEOUT:-900}s)")
        tail -30 "$log"
    elif grep -qE '^error(\[|:)' "$log" || ! grep -q '^test result' "$log"; then
        failed=$((failed + 1)); failures+=("cargo test (did not run cleanly)")
        tail -30 "$log"
    fi
    rm -f "$log"
    echo "   cargo: $passed passed, $failed failed (after $(( $(date +%s) - T0 ))s)"
fi

echo "== shell tests"
for t in tests/shell/*.sh; do
    name=$(basename "$t" .sh)
    if [ $# -gt 0 ]; then
        match=0; for pat in "$@"; do [[ $name == *"$pat"* ]] && match=1; done
        [ $match = 1 ] || continue
    fi
    limit=$(sed -n 's/^# *timeout: *\([0-9]*\).*/\1/p' "$t" | head -1)
    out=$(mktemp)
    s0=$(date +%s)
    BIN="$TOP/target/debug" timeout -k 10 "${limit:-300}" bash "$t" >"$out" 2>&1
    rc=$?
    secs=$(( $(date +%s) - s0 ))
    case $rc in
        0) passed=$((passed + 1)); echo "PASS  $name (${secs}s)"
           # a part the test could not run here is shown, not hidden in a pass
           grep -E '^(# SKIPPED|NOT SHOWN)' "$out" | sed 's/^# //; s/^/      /' ;;
        77) skipped=$((skipped + 1)); echo "SKIP  $name: $(grep -m1 '^SKIP:' "$out" | cut -c7-)" ;;
        *) failed=$((failed + 1)); failures+=("$name")
           [ $rc = 124 ] && echo "FAIL  $name (timed out after ${limit:-300}s)" || echo "FAIL  $name (exit $rc, ${secs}s)"
           tail -40 "$out" | sed 's/^/      | /' ;;
    esac
    rm -f "$out"
done

echo "== done in $(( $(date +%s) - T0 ))s"
[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
