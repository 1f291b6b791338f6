#!/usr/bin/env bash
# Shows: ./configure --enable-static_link builds lvmetad, lvmetactl, lvmetad-scan and lvmpolld as
# static executables (no program interpreter, no shared libraries) that run; cmirrord, whose
# corosync libraries exist only as shared objects on Debian, is built dynamically in the same make
# and runs too; make install installs both kinds. Prints each stripped size (make sizes).
# It is a second full release build of every crate (2-3 minutes on 2 cores, more than the
# packaging tests' budget), so it runs only when asked: PKG_STATIC=1 ./test.sh pkg-static
# timeout: 420
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/pkg.sh"
[ "${PKG_STATIC:-0}" = 1 ] || skip "a second full release build; run with PKG_STATIC=1 to check --enable-static_link"
need_cmd make cargo readelf

dir=$PKG_ROOT/static
pkg_configure "$dir" --prefix=/usr --enable-static_link
target=$(sed -n 's/^RUST_TARGET = //p' "$dir/Makefile")
cm_static=$(sed -n 's/^CMIRRORD_STATIC = //p' "$dir/Makefile")
have_cmirrord=$(sed -n 's/^BUILD_CMIRRORD = //p' "$dir/Makefile")
note "static target: $target; cmirrord static: $cm_static"
[ -n "$target" ] || fail "configure chose no Rust target for the static build"

t0=$SECONDS
(
    flock 9
    make -C "$dir" --no-print-directory CARGO_TARGET_DIR="$PKG_BUILD/target" >>"$TESTDIR/make.log" 2>&1
) 9>"$PKG_ROOT/.lock" || { tail -40 "$TESTDIR/make.log" >&2; fail "static make failed"; }
note "static release build: $((SECONDS - t0))s"

dest=$TESTDIR/dest
pkg_make "$dir" install DESTDIR="$dest" CARGO_TARGET_DIR="$PKG_BUILD/target"

is_static() { ! readelf -l "$1" | grep -q 'INTERP' && ! readelf -d "$1" 2>/dev/null | grep -q 'NEEDED'; }
for p in lvmetad lvmetactl lvmetad-scan lvmpolld; do
    f=$dest/usr/sbin/$p
    [ -x "$f" ] || fail "$p not installed"
    is_static "$f" || fail "$p is not statically linked: $(readelf -d "$f" | grep NEEDED)"
    "$f" --help >/dev/null 2>&1 </dev/null
    [ $? -lt 126 ] || fail "static $p does not run"
done
if [ "$have_cmirrord" = yes ]; then
    f=$dest/usr/sbin/cmirrord
    [ -x "$f" ] || fail "cmirrord not installed"
    if [ "$cm_static" = yes ]; then
        is_static "$f" || fail "cmirrord should be static"
    else
        readelf -d "$f" | grep -q 'NEEDED.*libcpg' || fail "dynamic cmirrord does not link libcpg"
    fi
    "$f" --help >/dev/null 2>&1 </dev/null
    [ $? -lt 126 ] || fail "cmirrord does not run"
fi

# The static lvmetad serves: start it in the foreground on a private socket.
"$dest/usr/sbin/lvmetad" -f -s "$TESTDIR/lvmetad.socket" -p "$TESTDIR/lvmetad.pid" &
pid=$!
at_exit "kill $pid"
wait_for_socket "$TESTDIR/lvmetad.socket" 10
send "$TESTDIR/lvmetad.socket" <<<'request = "hello"' | grep -q 'response = "OK"' \
    || fail "static lvmetad does not answer hello"
kill "$pid"

make -C "$dir" --no-print-directory sizes CARGO_TARGET_DIR="$PKG_BUILD/target" 2>/dev/null | grep -v '^\s*RUSTFLAGS\|Finished' | sed 's/^/# /'
echo "ok"
