#!/usr/bin/env bash
# Shows: the unsafe fence holds for files the compiler cannot see as a whole. Every crate root
# (library, binary, test, example, bench, fuzz target) says #![forbid(unsafe_code)], except the
# two libraries that deny it crate-wide and allow it on their wrappers (and any root listed in
# `pending`, none today); every `unsafe` block sits in one of the wrapper files.
# (The compiler enforces the rest: see the workspace lints in Cargo.toml.) No build, no root.
# timeout: 30
. "$(dirname "$0")/../lib/common.sh"
cd "$TOP" || fail "no checkout"

# Libraries that deny unsafe code crate-wide and allow it on their wrapper modules.
deny_roots="common/src/lib.rs cmirrord/src/lib.rs"
# The only files allowed to hold unsafe blocks.
wrappers="common/src/daemon/sys.rs common/src/dm/ioctl.rs cmirrord/src/connector.rs cmirrord/src/cpg.rs"
# Crate roots that still hold an unsafe call of their own (to move into a wrapper).
pending=""

if git rev-parse --git-dir >/dev/null 2>&1; then
    files=$(git ls-files '*.rs')
else
    files=$(find . -path ./target -prune -o -path ./fuzz/target -prune -o -name '*.rs' -print | sed 's|^\./||')
fi
bad=0 roots=0
for f in $files; do
    case " $wrappers $pending " in *" $f "*) continue ;; esac
    if grep -nE '(^|[^_[:alnum:]])unsafe[[:space:]]*(\{|fn|impl)' "$f" | grep -v '^[0-9]*:[[:space:]]*//'; then
        echo "$f: unsafe code outside the wrappers ($wrappers)"; bad=1
    fi
done
for f in $files; do
    case $f in
        */src/lib.rs | */src/main.rs | */src/bin/*.rs | */tests/*.rs | */examples/*.rs | */benches/*.rs | fuzz/fuzz_targets/*.rs) ;;
        *) continue ;;
    esac
    case $f in tests/*) continue ;; esac # not a crate root: helpers of the shell tests
    roots=$((roots + 1))
    case " $pending " in *" $f "*) continue ;; esac
    case " $deny_roots " in
        *" $f "*) grep -q '^#!\[deny(unsafe_code)\]' "$f" || { echo "$f: lost #![deny(unsafe_code)]"; bad=1; } ;;
        *) grep -q '^#!\[forbid(unsafe_code)\]' "$f" || { echo "$f: crate root without #![forbid(unsafe_code)]"; bad=1; } ;;
    esac
done
[ $bad = 0 ] || fail "the unsafe fence has a hole"
echo "$roots crate roots fenced; unsafe code only in: $wrappers${pending:+ (and still $pending)}"
