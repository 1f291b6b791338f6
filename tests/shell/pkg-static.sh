#!/usr/bin/env bash
# Shows: ./configure --enable-static_link builds lvmetad, lvmetactl, lvmetad-scan, lvmpolld and
# dm-thin-msg as static musl executables (no program interpreter, no shared library: readelf,
# file and ldd agree), each at most 1 MiB as installed, and the static daemons serve: the
# lvmetad and lvmpolld protocol tests (lvmetad-protocol, lvmpolld-options) and the bad-input
# test (rel-badinput) run against them. cmirrord, whose corosync libraries are shared-only and
# built for glibc, is built dynamically in the same make and runs. make install
# installs both kinds; make sizes prints each program's size. The libdaemon test server (testd)
# is built the same way and daemon-wire runs against it: a panicking handler is caught, so the
# musl build's unwinder (libunwind.a and our __fprintf_chk shim) works.
# The musl standard library is built from source (Debian's rustc-web + rust-web-src) into the
# shared target dir: a cold run costs about 5 minutes on 2 busy cores, a warm one seconds plus
# the protocol tests. Skips only when the musl toolchain is not installed (./test.sh as root
# installs it, tests/lib/deps.sh).
# timeout: 900
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/pkg.sh"
need_cmd make cargo readelf socat
MAX_BYTES=$((1024 * 1024))
MUSL_PACKAGES="rustc-web cargo-web rust-web-src libunwind-14-dev musl-tools"

dir=$PKG_ROOT/static
mkdir -p "$PKG_STATE/bin" "$PKG_PID_DIR"
ln -sfn "$(command -v lvm || echo /sbin/lvm)" "$PKG_LVM"
pkg_configure "$dir" --prefix=/usr --enable-static_link
mk() { sed -n "s/^$1 = //p" "$dir/Makefile"; }
target=$(mk RUST_TARGET) libc=$(mk STATIC_LIBC) build_std=$(mk STATIC_BUILD_STD)
have_cmirrord=$(mk BUILD_CMIRRORD) cm_static=$(mk CMIRRORD_STATIC)
note "static target: $target ($libc, std from source: $build_std); cmirrord static: $cm_static"
if [ "$libc" != musl ]; then
    missing=
    for p in $MUSL_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
    done
    [ -n "$missing" ] && skip "no musl Rust toolchain (missing:$missing; ./test.sh as root installs them)"
    fail "configure chose $libc for $target although$MUSL_PACKAGES are installed: $(grep -A1 'libunwind\|musl\|standard library' "$dir/config.log" | tail -8)"
fi

t0=$SECONDS
(
    flock 9
    nice -n 10 make -C "$dir" --no-print-directory CARGO_TARGET_DIR="$PKG_BUILD/target" \
        >>"$TESTDIR/make.log" 2>&1 &&
        # the test drivers testd and testc, static too (a second build: the installed programs
        # stay as a plain make builds them, without common's test support)
        nice -n 10 make -C "$dir" --no-print-directory CARGO_TARGET_DIR="$PKG_BUILD/target" \
            programs MAIN_PKGS="-p common --bin testd --bin testc --features test-support" \
            STATIC_EXTRA_PKGS= >>"$TESTDIR/make.log" 2>&1
) 9>"$PKG_ROOT/.lock" || { tail -40 "$TESTDIR/make.log" >&2; fail "static make failed"; }
note "static release build: $((SECONDS - t0))s"

dest=$TESTDIR/dest
pkg_make "$dir" install DESTDIR="$dest" CARGO_TARGET_DIR="$PKG_BUILD/target"

# not_static FILE: print why FILE is not a static executable (nothing when it is).
not_static() {
    local f=$1 why=
    readelf -l "$f" | grep -q 'Requesting program interpreter' \
        && why="$why interpreter $(readelf -l "$f" | sed -n 's/.*interpreter: \([^]]*\)].*/\1/p');"
    readelf -d "$f" 2>/dev/null | grep -q NEEDED \
        && why="$why needs $(readelf -d "$f" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ');"
    if command -v file >/dev/null; then
        file -L "$f" | grep -Eq 'static-pie linked|statically linked' || why="$why file: $(file -L -b "$f");"
    fi
    if command -v ldd >/dev/null; then
        ldd "$f" 2>&1 | grep -q '=>' && why="$why ldd lists libraries;"
    fi
    printf '%s' "$why"
}

sbin=$dest/usr/sbin
cp "$PKG_BUILD/target/$target/release/dm-thin-msg" "$TESTDIR/dm-thin-msg" && strip "$TESTDIR/dm-thin-msg" \
    || fail "no static dm-thin-msg built"
for f in "$sbin/lvmetad" "$sbin/lvmetactl" "$sbin/lvmetad-scan" "$sbin/lvmpolld" "$TESTDIR/dm-thin-msg"; do
    p=$(basename "$f")
    [ -x "$f" ] || fail "$p not installed"
    why=$(not_static "$f")
    [ -z "$why" ] || fail "$p is not a static executable:$why"
    size=$(wc -c <"$f")
    [ "$size" -le "$MAX_BYTES" ] || fail "$p is $size bytes, over 1 MiB ($MAX_BYTES)"
    "$f" --help >/dev/null 2>&1 </dev/null
    [ $? -lt 126 ] || fail "static $p does not run"
done
if [ "$have_cmirrord" = yes ]; then
    f=$dest/usr/sbin/cmirrord
    [ -x "$f" ] || fail "cmirrord not installed"
    if [ "$cm_static" = yes ]; then
        [ -z "$(not_static "$f")" ] || fail "cmirrord should be static"
    else
        readelf -d "$f" | grep -q 'NEEDED.*libcpg' || fail "dynamic cmirrord does not link libcpg"
    fi
    "$f" --help >/dev/null 2>&1 </dev/null
    [ $? -lt 126 ] || fail "cmirrord does not run"
fi

# The static daemons (and lvmetactl, testd, testc) under their protocol tests: a BIN directory
# holding them, plus the debug build's load client that lvmetad-protocol drives lvmetad with.
bin=$TESTDIR/bin
mkdir -p "$bin"
for p in lvmetad lvmetactl lvmpolld; do ln -s "$sbin/$p" "$bin/$p"; done
for p in testd testc; do
    f=$PKG_BUILD/target/$target/release/$p
    [ -x "$f" ] || fail "no static $p built"
    why=$(not_static "$f")
    [ -z "$why" ] || fail "$p is not a static executable:$why"
    ln -s "$f" "$bin/$p"
done
ln -s "$TOP/target/debug/lvmetad-bench" "$bin/lvmetad-bench"
[ -x "$bin/lvmetad-bench" ] || fail "no $TOP/target/debug/lvmetad-bench: cargo build --workspace --all-targets"
# (lvmpolld-differential, the byte comparison with C's lvmpolld, is left to the dynamic build:
# it checks request logic, which is the same code in both; the suite's time goes elsewhere.)
for t in daemon-wire lvmetad-protocol lvmpolld-options rel-badinput; do
    s0=$SECONDS
    rc=0
    BIN=$bin bash "$TOP/tests/shell/$t.sh" >"$TESTDIR/$t.out" 2>&1 || rc=$?
    case $rc in
        0) note "$t against the static daemons: ok ($((SECONDS - s0))s)" ;;
        77) note "$t against the static daemons: $(grep -m1 '^SKIP:' "$TESTDIR/$t.out")" ;;
        *) tail -20 "$TESTDIR/$t.out" >&2; fail "$t fails against the static daemons (exit $rc)" ;;
    esac
done

make -C "$dir" --no-print-directory sizes CARGO_TARGET_DIR="$PKG_BUILD/target" 2>/dev/null \
    | grep ' bytes ' | sed 's/^/# /'
echo "ok"
