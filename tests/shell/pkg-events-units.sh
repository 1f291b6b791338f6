#!/usr/bin/env bash
# Shows: make install puts the device-event hooks and the systemd units in place (the udev rule
# in the udev rules dir, the mdev hook lvmetad-mdev in sbindir, lvm2-lvmetad and lvm2-lvmpolld
# .socket/.service in the systemd unit dir), with the configured paths; `systemd-analyze verify`
# finds nothing to say about the units; a real socket activation (systemd-socket-activate, with
# the unit's ListenStream=, Environment= and ExecStart=) starts each daemon on its first client,
# which it serves on the socket systemd handed over; configure's --with-udevdir and
# --with-systemdsystemunitdir (=no leaves them out). The hooks' behaviour on real events:
# lvmetad-events-vm-root.sh.
# timeout: 600
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/pkg.sh"
need_cmd socat systemd-analyze systemd-socket-activate pkg-config
pkg-config --exists systemd || skip "pkg-config does not know systemd (no systemd.pc)"

# configure's choices (cheap).
cfg=$TESTDIR/cfg
pkg_configure "$cfg" --prefix=/usr --disable-cmirrord
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd)
grep -qx "systemdunitdir = $unitdir" "$cfg/Makefile" || fail "unit dir is not systemd's $unitdir: $(grep systemdunitdir "$cfg/Makefile")"
grep -q '^udevdir = /.*/rules.d$' "$cfg/Makefile" || fail "no udev rules dir: $(grep '^udevdir' "$cfg/Makefile")"
pkg_configure "$cfg" --prefix=/usr --disable-cmirrord --with-udevdir=no --without-systemdsystemunitdir
grep -qx 'udevdir = ' "$cfg/Makefile" && grep -qx 'systemdunitdir = ' "$cfg/Makefile" \
    || fail "=no did not leave the rule and the units out"
pkg_configure "$cfg" --prefix=/opt/x --disable-cmirrord
grep -qx 'systemdunitdir = ${prefix}/lib/systemd/system' "$cfg/Makefile" \
    || fail "a private prefix must keep the units under it: $(grep systemdunitdir "$cfg/Makefile")"
out=$(cd "$cfg" && "$TOP/configure" --with-udevdir=relative 2>&1) && fail "a relative --with-udevdir was accepted"
grep -q "absolute path or no" <<<"$out" || fail "unclear message: $out"

pkg_build
dest=$TESTDIR/dest
pkg_make "$PKG_BUILD" install DESTDIR="$dest"
udevdir=$(sed -n 's/^udevdir = //p' "$PKG_BUILD/Makefile")
unitdir=$(sed -n 's/^systemdunitdir = //p' "$PKG_BUILD/Makefile")
[ -n "$unitdir" ] || fail "the shared build has no systemd unit dir"
for f in "$udevdir/69-lvmetad-scan.rules" /usr/sbin/lvmetad-mdev "$unitdir/lvm2-lvmetad.socket" \
    "$unitdir/lvm2-lvmetad.service" "$unitdir/lvm2-lvmpolld.socket" "$unitdir/lvm2-lvmpolld.service"; do
    [ -f "$dest$f" ] || fail "make install did not install $f"
done
[ -x "$dest/usr/sbin/lvmetad-mdev" ] || fail "lvmetad-mdev is not executable"
busybox sh -n "$dest/usr/sbin/lvmetad-mdev" || fail "lvmetad-mdev: busybox sh syntax error"
grep -q "^SOCKET=\${LVM_LVMETAD_SOCKET:-$PKG_RUN_DIR/lvmetad.socket}" "$dest/usr/sbin/lvmetad-mdev" \
    || fail "lvmetad-mdev: configured socket not substituted"
grep -q "TEST!=\"$PKG_RUN_DIR/lvmetad.socket\"" "$dest$udevdir/69-lvmetad-scan.rules" \
    || fail "udev rule: configured socket not substituted"
grep -q 'RUN+="/usr/sbin/lvmetad-scan --cache --major $major --minor $minor"' "$dest$udevdir/69-lvmetad-scan.rules" \
    || fail "udev rule: scanner path"
# The hook is quiet and does nothing while lvmetad's socket is missing.
out=$(env -i SUBSYSTEM=block ACTION=add MAJOR=7 MINOR=0 LVM_LVMETAD_SOCKET="$TESTDIR/none" \
    LVMETAD_SCAN=/bin/false sh "$dest/usr/sbin/lvmetad-mdev" 2>&1) || fail "hook failed without lvmetad"
[ -z "$out" ] || fail "hook not quiet without lvmetad: $out"

# systemd's own check, against the installed tree (its binaries and man pages).
out=$(MANPATH=$dest/usr/share/man systemd-analyze verify --root="$dest" \
    "$dest$unitdir"/lvm2-lvmetad.socket "$dest$unitdir"/lvm2-lvmetad.service \
    "$dest$unitdir"/lvm2-lvmpolld.socket "$dest$unitdir"/lvm2-lvmpolld.service 2>&1) \
    || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify has remarks: $out"
note "systemd-analyze verify: clean"

# unit_value FILE KEY: the value of KEY= in a unit file.
unit_value() { sed -n "s/^$2=//p" "$1" | head -n 1; }
# activate NAME: systemd-socket-activate with the units' socket, environment and command line.
activate() {
    local name=$1 sock env exec pid i
    sock=$(unit_value "$dest$unitdir/lvm2-$name.socket" ListenStream)
    env=$(unit_value "$dest$unitdir/lvm2-$name.service" Environment)
    exec=$(unit_value "$dest$unitdir/lvm2-$name.service" ExecStart)
    [ "$sock" = "$PKG_RUN_DIR/$name.socket" ] || fail "$name.socket listens on $sock"
    [ "$env" = SD_ACTIVATION=1 ] || fail "$name.service environment: $env"
    grep -q -- "-s $sock -p $PKG_PID_DIR/$name.pid" <<<"$exec" || fail "$name.service: $exec"
    rm -f "$sock" "$PKG_PID_DIR/$name.pid"
    mkdir -p "$PKG_RUN_DIR" "$PKG_PID_DIR"
    # shellcheck disable=SC2086
    systemd-socket-activate -l "$sock" -E "$env" "$dest"$exec >"$TESTDIR/$name.log" 2>&1 &
    pid=$!
    at_exit "kill $pid"
    wait_for_socket "$sock" 10
    sleep 0.3
    [ "$(cat "/proc/$pid/comm")" = systemd-socket- ] || fail "$name started before its first client"
    send "$sock" <<<'request = "hello"' | grep -q 'response = "OK"' || fail "$name: first client not served"
    for i in $(seq 50); do [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] && break; sleep 0.1; done
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || fail "$name is not running after the first client"
    [ "$(cat "$PKG_PID_DIR/$name.pid")" = "$pid" ] || fail "$name: pidfile does not name it"
    grep -q "Execing" "$TESTDIR/$name.log" || fail "$name: not started by systemd-socket-activate: $(cat "$TESTDIR/$name.log")"
    kill "$pid"
    wait_gone "$pid" 10 || fail "$name did not exit on SIGTERM"
    note "$name: socket-activated on its first client (pid $pid), served, stopped"
}
activate lvmetad
activate lvmpolld
echo ok
