#!/usr/bin/env bash
# Shows: ./configure --prefix=/usr && make && make install DESTDIR=... puts the stripped daemons,
# the init scripts and the man pages where a packager expects them, with the configured paths
# baked into the binaries and scripts (lvmetad listens on the configured socket, lvmpolld runs the
# configured lvm binary); make uninstall removes every installed file; configure
# rejects unknown options and a --enable-cmirrord it cannot satisfy, like autoconf.
# timeout: 600
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/pkg.sh"

# --- configure's own contract (cheap, before the build) ---
cfg=$TESTDIR/cfg
mkdir -p "$cfg"
out=$(cd "$cfg" && "$TOP/configure" --enable-lvmetd 2>&1) && fail "a misspelt --enable option was accepted"
grep -q "unrecognized option: \`--enable-lvmetd'" <<<"$out" || fail "unexpected message: $out"
out=$(cd "$cfg" && "$TOP/configure" --frobnicate 2>&1) && fail "an unknown option was accepted"
grep -q "Try \`.*configure --help'" <<<"$out" || fail "no --help hint: $out"
(cd "$cfg" && "$TOP/configure" -q --disable-option-checking --enable-frob >/dev/null 2>&1) \
    || fail "--disable-option-checking did not turn unknown options into warnings"
(cd "$cfg" && "$TOP/configure" --help) | grep -q -- '--with-default-run-dir' || fail "--help lacks --with-default-run-dir"
out=$(cd "$cfg" && PKG_CONFIG=/nonexistent/pkg-config "$TOP/configure" --enable-cmirrord 2>&1) \
    && fail "--enable-cmirrord without corosync libraries was accepted"
grep -q 'cmirrord needs corosync' <<<"$out" || fail "unclear cmirrord error: $out"
(cd "$cfg" && PKG_CONFIG=/nonexistent/pkg-config "$TOP/configure" -q >/dev/null) \
    || fail "configure without corosync did not just leave cmirrord out"
grep -q '^BUILD_CMIRRORD = no' "$cfg/Makefile" || fail "cmirrord not disabled when corosync is missing"
# lvm2's defaults: prefix /usr, daemons in /sbin, lvm binary /sbin/lvm, sockets in /run/lvm
(cd "$cfg" && "$TOP/configure" -q --disable-cmirrord >/dev/null) || fail "plain configure failed"
grep -q '^exec_prefix = $' "$cfg/Makefile" || fail "default exec_prefix is not empty (lvm2 installs to /sbin)"
grep -q '^LVM_BINARY = /sbin/lvm$' "$cfg/Makefile" || fail "default lvm binary is not /sbin/lvm"
grep -q '^DEFAULT_RUN_DIR = /run/lvm$' "$cfg/Makefile" || fail "default run dir is not /run/lvm"

# --- the build ---
pkg_build
have_cmirrord=$(sed -n 's/^BUILD_CMIRRORD = //p' "$PKG_BUILD/Makefile")
note "cmirrord built: $have_cmirrord"

dest=$TESTDIR/dest
pkg_make "$PKG_BUILD" install DESTDIR="$dest"

expect=(usr/sbin/lvmetad usr/sbin/lvmetactl usr/sbin/lvmetad-scan usr/sbin/lvmpolld
    etc/init.d/lvm2-lvmetad etc/init.d/lvm2-lvmpolld
    usr/share/man/man8/lvmetad.8 usr/share/man/man8/lvmetactl.8 usr/share/man/man8/lvmetad-scan.8
    usr/share/man/man8/lvmpolld.8)
[ "$have_cmirrord" = yes ] && expect+=(usr/sbin/cmirrord etc/init.d/cmirrord usr/share/man/man8/cmirrord.8)
# device-event hooks, and the systemd units when configure found systemd (pkg-events-units.sh)
expect+=(usr/sbin/lvmetad-mdev "$(sed -n 's|^udevdir = /||p' "$PKG_BUILD/Makefile")/69-lvmetad-scan.rules")
unitdir=$(sed -n 's|^systemdunitdir = /||p' "$PKG_BUILD/Makefile")
[ -n "$unitdir" ] && expect+=("$unitdir"/lvm2-lvmetad.socket "$unitdir"/lvm2-lvmetad.service
    "$unitdir"/lvm2-lvmpolld.socket "$unitdir"/lvm2-lvmpolld.service)
for f in "${expect[@]}"; do
    [ -f "$dest/$f" ] || fail "make install did not install /$f"
done
got=$(cd "$dest" && find . -type f | sed 's|^\./||' | sort)
want=$(printf '%s\n' "${expect[@]}" | sort)
[ "$got" = "$want" ] || fail "installed files differ from the expected set:$(diff <(echo "$want") <(echo "$got"))"

for f in "${expect[@]}"; do
    case $f in
        */sbin/*)
            [ -x "$dest/$f" ] || fail "/$f is not executable"
            readelf -S "$dest/$f" 2>/dev/null | grep -q '\.symtab' && fail "/$f is not stripped"
            # the programs (not the mdev hook script): --help exits 0 and prints the usage
            if [ "$(head -c 4 "$dest/$f" | tail -c 3)" = ELF ]; then
                out=$("$dest/$f" --help 2>&1 </dev/null) || fail "/$f --help exited $?: $out"
                grep -qE '^(Usage:|lvmetactl [a-z_]+)' <<<"$out" || fail "/$f --help prints no usage: $out"
            fi ;;
        */init.d/*)
            [ -x "$dest/$f" ] || fail "/$f is not executable"
            head -1 "$dest/$f" | grep -qx '#!/bin/sh' || fail "/$f is not a /bin/sh script"
            grep -q '^### BEGIN INIT INFO' "$dest/$f" || fail "/$f has no LSB header"
            grep -q '^\. /etc/init.d/functions\|/lib/lsb/init-functions' "$dest/$f" \
                && fail "/$f needs a distribution's init functions"
            busybox sh -n "$dest/$f" || fail "/$f: busybox sh syntax error" ;;
        */man8/* | */rules.d/* | */systemd/system/*)
            [ "$(stat -c %a "$dest/$f")" = 644 ] || fail "/$f mode is not 644" ;;
    esac
done

# The configured paths are baked in: binaries (through cargo's environment) and scripts.
grep -qa "$PKG_RUN_DIR" "$dest/usr/sbin/lvmetad" || fail "lvmetad does not carry the configured run dir"
grep -qa "$PKG_LVM" "$dest/usr/sbin/lvmpolld" || fail "lvmpolld does not carry the configured lvm binary"
grep -qx "DAEMON=\"/usr/sbin/lvmetad\"" "$dest/etc/init.d/lvm2-lvmetad" || fail "lvm2-lvmetad: wrong DAEMON"
grep -qx "PIDFILE=\"$PKG_PID_DIR/lvmpolld.pid\"" "$dest/etc/init.d/lvm2-lvmpolld" || fail "lvm2-lvmpolld: wrong PIDFILE"
grep -qx "SOCKET=\"$PKG_RUN_DIR/lvmetad.socket\"" "$dest/etc/init.d/lvm2-lvmetad" || fail "lvm2-lvmetad: wrong SOCKET"
grep -q "$PKG_RUN_DIR/lvmpolld.socket" "$dest/usr/share/man/man8/lvmpolld.8" || fail "lvmpolld.8: default socket not substituted"
grep -q "$PKG_LVM" "$dest/usr/share/man/man8/lvmpolld.8" || fail "lvmpolld.8: lvm binary not substituted"
# (cmirrord's baked-in pidfile: checked last, below)

# The installed lvmetad uses the baked-in socket and pidfile when given neither -s nor -p.
rm -f "$PKG_RUN_DIR/lvmetad.socket"
mkdir -p "$PKG_RUN_DIR"
env -u LVM_LVMETAD_SOCKET -u LVM_LVMETAD_PIDFILE "$dest/usr/sbin/lvmetad" -f &
pid=$!
at_exit "kill $pid"
wait_for_socket "$PKG_RUN_DIR/lvmetad.socket" 10
[ -s "$PKG_PID_DIR/lvmetad.pid" ] || fail "no pidfile at the configured $PKG_PID_DIR/lvmetad.pid"
send "$PKG_RUN_DIR/lvmetad.socket" <<<'request = "hello"' | grep -q 'response = "OK"' \
    || fail "the installed lvmetad does not answer hello on its default socket"
kill "$pid"
wait_gone "$pid" 10 || fail "lvmetad did not exit on SIGTERM"
[ -e "$PKG_RUN_DIR/lvmetad.socket" ] && fail "lvmetad left its socket behind"

# The installed lvmpolld runs the configured lvm binary when given no -B: it refuses to start
# while that path is missing, and starts once it is there.
mv "$PKG_LVM" "$PKG_LVM.away"
at_exit "mv $PKG_LVM.away $PKG_LVM"
out=$(timeout 10 "$dest/usr/sbin/lvmpolld" -f -s "$TESTDIR/p.socket" -p "$TESTDIR/p.pid" 2>&1) \
    && fail "lvmpolld started without its configured lvm binary"
grep -q "$PKG_LVM" <<<"$out" || fail "lvmpolld did not name the configured lvm binary: $out"
mv "$PKG_LVM.away" "$PKG_LVM"
"$dest/usr/sbin/lvmpolld" -f -s "$TESTDIR/p.socket" -p "$TESTDIR/p.pid" &
pid=$!
at_exit "kill $pid"
wait_for_socket "$TESTDIR/p.socket" 10
kill "$pid"

# --- uninstall removes every file install put in place ---
pkg_make "$PKG_BUILD" uninstall DESTDIR="$dest"
left=$(cd "$dest" && find . -type f)
[ -z "$left" ] || fail "make uninstall left: $left"

# --- per-daemon install targets install only their own files ---
dest2=$TESTDIR/dest2
pkg_make "$PKG_BUILD" install_lvmpolld DESTDIR="$dest2"
got=$(cd "$dest2" && find . -type f | sed 's|^\./||')
[ "$got" = usr/sbin/lvmpolld ] || fail "install_lvmpolld installed: $got"
# cmirrord has no option for its pidfile: the configured pid dir must be compiled in (lvm2's
# CMIRRORD_PIDFILE).
if [ "$have_cmirrord" = yes ]; then
    grep -qa "$PKG_PID_DIR/cmirrord.pid" "$PKG_BUILD/target/release/cmirrord" \
        || grep -qa "$PKG_PID_DIR" "$PKG_BUILD/target/release/cmirrord" \
        || fail "cmirrord does not carry the configured pid dir (it writes no pidfile?)"
fi
echo "ok"
