# Helpers for the packaging tests (tests/shell/pkg-*.sh). Source after common.sh.
#
# The release build is the expensive part, so it lives in a fixed out-of-tree build directory
# under the checkout's target/ and is reused by every run: the paths baked into the binaries
# (sockets, pidfiles, lvm binary) point into PKG_STATE, a fixed directory too, so the cargo
# environment stays the same from run to run and cargo rebuilds only what changed.

PKG_ROOT=$TOP/target/pkg-test
PKG_BUILD=$PKG_ROOT/build          # ./configure --prefix=/usr ran here
PKG_STATE=$PKG_ROOT/state          # baked-in run dir ($PKG_STATE/run/lvm) and pid dir ($PKG_STATE/run)
PKG_RUN_DIR=$PKG_STATE/run/lvm
PKG_PID_DIR=$PKG_STATE/run
PKG_LVM=$PKG_STATE/bin/lvm         # baked-in lvm binary: a link to the real one

# pkg_configure DIR ARGS...: run the checkout's configure in DIR (out of tree) with the test's
# baked-in paths, quietly, showing config.log on failure.
pkg_configure() {
    local dir=$1
    shift
    mkdir -p "$dir" || fail "cannot create $dir"
    (cd "$dir" && "$TOP/configure" -q \
        --with-default-run-dir="$PKG_RUN_DIR" --with-default-pid-dir="$PKG_PID_DIR" \
        --with-lvm-binary="$PKG_LVM" "$@") \
        || { tail -20 "$dir/config.log" >&2; fail "configure $* failed"; }
}

# pkg_make DIR TARGET...: GNU make in DIR, output kept in $TESTDIR/make.log (shown on failure).
pkg_make() {
    local dir=$1
    shift
    make -C "$dir" --no-print-directory "$@" >>"$TESTDIR/make.log" 2>&1 \
        || { tail -40 "$TESTDIR/make.log" >&2; fail "make $* failed"; }
}

# pkg_build: configure --prefix=/usr in PKG_BUILD and make (the shared release build).
pkg_build() {
    need_cmd make cargo
    mkdir -p "$PKG_STATE/bin" "$PKG_PID_DIR"
    local lvm
    lvm=$(command -v lvm || echo /sbin/lvm)
    ln -sfn "$lvm" "$PKG_LVM"
    pkg_configure "$PKG_BUILD" --prefix=/usr
    local t0=$SECONDS
    # one build at a time in the shared directory
    (
        flock 9
        make -C "$PKG_BUILD" --no-print-directory >>"$TESTDIR/make.log" 2>&1
    ) 9>"$PKG_ROOT/.lock" || { tail -40 "$TESTDIR/make.log" >&2; fail "make failed"; }
    note "release build: $((SECONDS - t0))s"
}

# pkg_corosync_up NETNS DIR: a single-node corosync in network namespace NETNS (its IPC
# sockets are abstract, so they are private to the namespace). Returns 1 if it does not come up.
pkg_corosync_up() {
    local ns=$1 dir=$2
    mkdir -p "$dir/state"
    cat >"$dir/corosync.conf" <<EOF
totem {
    version: 2
    cluster_name: pkgtest
    transport: knet
    crypto_cipher: none
    crypto_hash: none
}
nodelist {
    node {
        ring0_addr: 127.0.0.1
        name: node1
        nodeid: 1
    }
}
quorum {
    provider: corosync_votequorum
}
system {
    state_dir: $dir/state
}
logging {
    to_stderr: yes
    to_syslog: no
    to_logfile: no
}
EOF
    ip netns add "$ns" || return 1
    at_exit "ip netns del $ns"
    ip netns exec "$ns" ip link set lo up || return 1
    ip netns exec "$ns" corosync -f -c "$dir/corosync.conf" >"$dir/corosync.log" 2>&1 &
    local pid=$! i
    at_exit "kill $pid; wait_gone $pid 5"
    for i in $(seq 50); do
        grep -q 'ready to provide service' "$dir/corosync.log" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -5 "$dir/corosync.log" >&2
    return 1
}
