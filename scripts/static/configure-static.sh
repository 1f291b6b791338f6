# configure-static.sh: configure's choice of toolchain for --enable-static_link (sourced by
# configure, which provides checking/result/die/log and the variables used here).
#
# In order of preference:
#   1. musl with a prebuilt standard library for $RUSTC (rustup target add ARCH-unknown-linux-musl);
#   2. musl with the standard library built from source (cargo -Zbuild-std) by $STATIC_RUSTC,
#      which needs: that compiler's library sources (Debian: rust-web-src for rustc-web),
#      musl's libc.a and start files (musl-dev), a static libunwind.a (Debian: libunwind-14-dev),
#      and $CC to link. Debian's libunwind.a was built against glibc and wants __fprintf_chk,
#      which scripts/static/fprintf_chk.c provides (compiled by $MUSL_CC);
#   3. the host's glibc target with +crt-static (needs libc6-dev's libc.a).
# --with-rust-target=TRIPLE forces the target: a musl triple then uses 1 or 2, and fails if
# neither works; any other triple must link with a prebuilt standard library.
#
# Sets: rust_target, static_libc (musl or glibc), static_build_std (yes/no), static_link_flags
# (rustc flags for the source-built musl link), fprintf_chk_shim (yes/no).

# static_prebuilt_std TRIPLE: does $RUSTC have a standard library for TRIPLE?
static_prebuilt_std() {
    _tdir=$("$RUSTC" --print target-libdir --target "$1" 2>>config.log)
    [ -n "$_tdir" ] && ls "$_tdir"/libstd-*.rlib >/dev/null 2>&1
}

# static_rustc_conftest TRIPLE: link and run a static Rust program with $RUSTC's own std.
static_rustc_conftest() {
    checking "whether $RUSTC links a static executable for $1"
    _ct=$builddir/conftest.$$
    mkdir -p "$_ct" || die "cannot create $_ct"
    printf 'fn main() { println!("{}", std::process::id()); }\n' >"$_ct/main.rs"
    # shellcheck disable=SC2086
    if "$RUSTC" $RUSTFLAGS -C target-feature=+crt-static --target "$1" -C opt-level=s \
        -o "$_ct/main" "$_ct/main.rs" >>config.log 2>&1 \
        && "$_ct/main" >/dev/null 2>&1 \
        && ! { command -v ldd >/dev/null 2>&1 && ldd "$_ct/main" 2>&1 | grep -q '=>'; }; then
        result yes
        rm -rf "$_ct"
        return 0
    fi
    result no
    rm -rf "$_ct"
    return 1
}

# static_build_std_usable TRIPLE: are the ingredients of a source-built musl std there, and do
# musl, libunwind.a and the shim link a static-pie program that unwinds? Sets the flags on success.
static_build_std_usable() {
    _triple=$1
    _arch=${_triple%%-*}
    checking "for a rustc with the standard library's source ($STATIC_RUSTC)"
    if ! [ -x "$STATIC_RUSTC" ] || ! [ -x "$STATIC_CARGO" ]; then
        result "no ($STATIC_RUSTC or $STATIC_CARGO missing; Debian: apt-get install rustc-web cargo-web rust-web-src)"
        return 1
    fi
    _sysroot=$("$STATIC_RUSTC" --print sysroot 2>>config.log)
    if ! [ -f "$_sysroot/lib/rustlib/src/rust/library/std/Cargo.toml" ]; then
        result "no (no $_sysroot/lib/rustlib/src/rust/library; Debian: rust-web-src)"
        return 1
    fi
    result "yes ($("$STATIC_RUSTC" --version 2>>config.log))"

    checking "for musl's libc.a and start files"
    [ -n "$MUSL_LIBDIR" ] || MUSL_LIBDIR=/usr/lib/$_arch-linux-musl
    if ! [ -f "$MUSL_LIBDIR/libc.a" ] || ! [ -f "$MUSL_LIBDIR/rcrt1.o" ]; then
        result "no (not in $MUSL_LIBDIR; Debian: musl-dev, or set MUSL_LIBDIR)"
        return 1
    fi
    result "$MUSL_LIBDIR"

    checking "for $CC's crtbeginS.o"
    _crt=$("$CC" -print-file-name=crtbeginS.o 2>>config.log)
    case $_crt in
        /*) _crtdir=$(dirname "$_crt"); result "$_crtdir" ;;
        *) result "no (set CC= to a gcc)"; return 1 ;;
    esac

    checking "for a static libunwind.a"
    if [ -z "$LIBUNWIND_DIR" ]; then
        for _d in "$MUSL_LIBDIR" $(ls -d /usr/lib/llvm-*/lib 2>/dev/null | sort -t- -k2 -n -r); do
            [ -f "$_d/libunwind.a" ] && { LIBUNWIND_DIR=$_d; break; }
        done
    fi
    if [ -z "$LIBUNWIND_DIR" ] || ! [ -f "$LIBUNWIND_DIR/libunwind.a" ]; then
        result "no (Debian: libunwind-14-dev, or set LIBUNWIND_DIR)"
        return 1
    fi
    result "$LIBUNWIND_DIR/libunwind.a"

    checking "whether libunwind.a wants glibc's __fprintf_chk"
    fprintf_chk_shim=yes
    if command -v nm >/dev/null 2>&1; then
        nm "$LIBUNWIND_DIR/libunwind.a" 2>/dev/null | grep -q ' U __fprintf_chk$' || fprintf_chk_shim=no
    fi
    result "$fprintf_chk_shim"

    checking "whether musl, libunwind.a$( [ $fprintf_chk_shim = yes ] && printf ' and the shim') link a static-pie program that unwinds"
    _ct=$builddir/conftest.$$
    mkdir -p "$_ct" || die "cannot create $_ct"
    cat >"$_ct/main.c" <<'EOF'
#include <stdio.h>
typedef int (*trace_fn)(void *, void *);
extern int _Unwind_Backtrace(trace_fn, void *);
static int count(void *ctx, void *arg) { (void)ctx; ++*(int *)arg; return 0; }
int main(void) { int n = 0; _Unwind_Backtrace(count, &n); printf("%d\n", n); return n > 0 ? 0 : 1; }
EOF
    _objs="$_ct/main.o"
    if "$MUSL_CC" -c -o "$_ct/main.o" "$_ct/main.c" >>config.log 2>&1 \
        && { [ $fprintf_chk_shim = no ] || { _objs="$_objs $_ct/shim.o"
            "$MUSL_CC" -Os -c -o "$_ct/shim.o" "$srcdir/scripts/static/fprintf_chk.c" >>config.log 2>&1; }; } \
        && "$CC" -static-pie -nostartfiles -nodefaultlibs -o "$_ct/main" \
            "$MUSL_LIBDIR/rcrt1.o" "$MUSL_LIBDIR/crti.o" "$_crtdir/crtbeginS.o" $_objs \
            -L"$MUSL_LIBDIR" -L"$LIBUNWIND_DIR" -Wl,-Bstatic -lunwind -lc \
            "$_crtdir/crtendS.o" "$MUSL_LIBDIR/crtn.o" >>config.log 2>&1 \
        && "$_ct/main" >>config.log 2>&1 \
        && ! { command -v readelf >/dev/null 2>&1 && readelf -l "$_ct/main" | grep -q INTERP; }; then
        result yes
        rm -rf "$_ct"
    else
        result "no (see config.log)"
        rm -rf "$_ct"
        return 1
    fi
    # rustc finds the start files (rcrt1.o, crti.o, crtbeginS.o, ...) in the -L directories when
    # linking self-contained; -lc then finds musl's libc.a first, -lunwind the libunwind.a.
    static_link_flags="-C linker=$CC -C link-self-contained=yes -L native=$MUSL_LIBDIR -L native=$_crtdir -L native=$LIBUNWIND_DIR"
    return 0
}

static_choose_target() {
    case $rust_static_target in
        '') case $rust_host in
                *-linux-gnu*) _musl=$(printf '%s' "$rust_host" | sed 's/-linux-gnu.*/-linux-musl/') ;;
                *) _musl= ;;
            esac ;;
        *-musl*) _musl=$rust_static_target ;;
        *) _musl= ;;
    esac
    if [ -n "$_musl" ]; then
        checking "for a prebuilt Rust standard library for $_musl"
        if static_prebuilt_std "$_musl"; then
            result yes
            static_rustc_conftest "$_musl" && { rust_target=$_musl; static_libc=musl; return 0; }
        else
            result no
        fi
        if static_build_std_usable "$_musl"; then
            rust_target=$_musl
            static_libc=musl
            static_build_std=yes
            return 0
        fi
        [ -n "$rust_static_target" ] && die "--with-rust-target=$rust_static_target: no prebuilt standard library for it and none can be built from source (see the lines above and config.log)"
        log "no musl toolchain: static glibc instead (bigger binaries)"
    fi
    rust_target=${rust_static_target:-$rust_host}
    static_libc=glibc
    case $rust_target in *-musl*) static_libc=musl ;; esac
    static_rustc_conftest "$rust_target" \
        || die "--enable-static_link: cannot link a static Rust program for $rust_target: is the target installed (rustup target add $rust_target) and are the C library's static archives there (libc6-dev's libc.a)? See config.log"
}
