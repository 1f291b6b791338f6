#!/bin/bash
# Guest side of tests/shell/lvmetad-events-vm-root.sh: lvmetad kept current by device events on a
# real kernel. Needs BIN (host-built binaries), TOP (the checkout) and IMGDIR (PV images
# pv1.img..pvN.img, N = STORM, default 50).
#  1. busybox mdev runs our hook (scripts/lvmetad-mdev.in) for every block device event, one
#     process per event and unordered, as the kernel's hotplug helper runs it: the kernel's own
#     /proc/sys/kernel/hotplug when it has one, else (Debian's kernel: no CONFIG_UEVENT_HELPER)
#     busybox `uevent` starting a bare `mdev` per event in the background, which is the same;
#  2. a loop device holding a PV is known to lvmetad within 1 s of losetup; detached, it is gone;
#  3. 50 PVs attached at once: the cache equals a full scan;
#  4. 50 PVs detached at once, then attached at once, while a full `lvmetad-scan --cache` runs:
#     the cache equals a full scan each time;
#  5. udev: `udevadm test` of our rule (scripts/69-lvmetad-scan.rules.in), then systemd-udevd
#     running it for a real attach and detach when udevd can run (not in run-in-vm.sh's chroot).
set -u
[ "${IN_VM:-0}" = 1 ] || { echo "events.sh: run me inside run-in-vm.sh" >&2; exit 2; }
[ -x "${BIN:-}/lvmetad-scan" ] || { echo "events.sh: BIN must hold lvmetad and lvmetad-scan" >&2; exit 2; }
N=${STORM:-50}
T=/tmp/events
mkdir -p "$T" /run/lvm
SOCK=/run/lvm/lvmetad.socket
REF=/run/lvm/reference.socket
fails=0
T0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
step() { printf '\n=== [%s s] %s\n' "$(since "$T0")" "$*"; }
ok() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# cached SOCKET: "pvid device" lines of what lvmetad holds, sorted.
cached() {
    printf 'request="pv_list"\ntoken="skip"\n\n##\n' | socat -t 5 - "UNIX-CONNECT:$1" \
        | awk -F= '/^\t\tdevice=/ {d = $2} /^\t\tid=/ {i = $2} /^\t}/ {print i, d}' | sort
}
# view SOCKET: PVs, VGs and LVs lvmetad holds, normalised.
view() {
    "$BIN/lvmetad-scan" --show --json -s "$1" \
        | jq -S '.pvs |= sort_by(.pv_uuid) | .vgs |= sort_by(.vg_uuid) | .lvs |= sort_by(.vg_name, .lv_name)'
}
# busy: event handlers still running (mdev, the hook, the scanner).
busy() { pgrep -x mdev || pgrep -x lvmetad-mdev || pgrep -x lvmetad-scan; } >/dev/null
# settle: no event handler for 1 s (events still queued start handlers within that).
settle() {
    local quiet=0 i
    for ((i = 0; i < 300; i++)); do
        if busy; then quiet=0; else quiet=$((quiet + 1)); fi
        [ $quiet -ge 4 ] && return 0
        sleep 0.25
    done
    return 1
}
# same_as_full_scan WHAT: our cache equals what a full scan into a fresh daemon gives.
same_as_full_scan() {
    local r
    "$BIN/lvmetad" -f -s "$REF" -p /run/reference.pid >>"$T/reference.log" 2>&1 &
    r=$!
    for _ in $(seq 100); do [ -S "$REF" ] && break; sleep 0.05; done
    "$BIN/lvmetad-scan" --cache -s "$REF" >>"$T/reference.log" 2>&1
    view "$SOCK" >"$T/ours.json"
    view "$REF" >"$T/full.json"
    kill "$r"; wait "$r" 2>/dev/null
    if diff -u "$T/full.json" "$T/ours.json" >"$T/diff"; then
        ok "$1: cache equals a full scan ($(jq '.pvs | length' "$T/ours.json") PVs, $(jq '.vgs | length' "$T/ours.json") VG)"
    else
        head -40 "$T/diff"
        bad "$1: cache differs from a full scan"
    fi
}
# wait_for SECONDS CMD...: poll CMD every 20 ms; print the seconds it took; 1 if it never held.
wait_for() {
    local t0 limit=$1
    shift
    t0=$(date +%s.%N)
    while ! "$@"; do
        awk -v a="$t0" -v b="$(date +%s.%N)" -v l="$limit" 'BEGIN { exit !(b - a > l) }' && return 1
        sleep 0.02
    done
    since "$t0"
}
knows() { cached "$SOCK" | grep -q " $1\$"; }
forgot() { ! knows "$1"; }
devt() { local s; s=$(stat -L -c '%t %T' "$1"); set -- $s; echo $(((0x$2 & 0xff) | (0x$1 << 8) | ((0x$2 & ~0xff) << 12))); }

step "PV images (made on the host): $N, the first three in vgstorm; attached read-only"
IMGS=()
for i in $(seq "$N"); do IMGS+=("$IMGDIR/pv$i.img"); done
[ -f "${IMGS[$((N - 1))]}" ] || { echo "events.sh: IMGDIR must hold pv1.img..pv$N.img" >&2; exit 2; }
attach() { losetup -r -f --show "$1"; }

step "hooks: our mdev hook and udev rule, with BIN as sbindir and /run/lvm as run dir"
SUBST=(-e "s|@sbindir@|$BIN|g" -e 's|@DEFAULT_RUN_DIR@|/run/lvm|g')
sed "${SUBST[@]}" "$TOP/scripts/lvmetad-mdev.in" >"$T/lvmetad-mdev"
chmod 755 "$T/lvmetad-mdev"
sed "${SUBST[@]}" "$TOP/scripts/69-lvmetad-scan.rules.in" >"$T/69-lvmetad-scan.rules"
ln -sf /bin/busybox "$T/mdev"
# The line scripts/lvmetad-mdev.in documents, then a catch-all.
printf -- '-SUBSYSTEM=block;.* 0:0 660 *%s\n.* 0:0 660\n' "$T/lvmetad-mdev" >/etc/mdev.conf

step "lvmetad on $SOCK, filled by a full scan (what the init script does)"
"$BIN/lvmetad" -f -l all -s "$SOCK" -p /run/lvmetad.pid >"$T/lvmetad.log" 2>&1 &
LVMETAD=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
"$BIN/lvmetad-scan" --cache 2>&1 | sed 's/^/    /'

step "mdev as the hotplug helper"
if [ -w /proc/sys/kernel/hotplug ]; then
    echo "$T/mdev" >/proc/sys/kernel/hotplug
    echo "kernel hotplug helper: $T/mdev"
    helper=kernel
else
    # No CONFIG_UEVENT_HELPER: busybox uevent hands each event to a background mdev, so
    # handlers run at once and unordered, as the kernel's helper runs them.
    busybox uevent sh -c "$T/mdev &" &
    UEVENT=$!
    echo "no /proc/sys/kernel/hotplug (kernel without CONFIG_UEVENT_HELPER): busybox uevent starts one mdev per event, in the background"
    helper=uevent
    sleep 0.5
fi

step "one PV attached, then detached"
# The limit is 1 s. Under QEMU's TCG on a loaded host one event's chain of process starts
# (uevent's sh, mdev, its sh, the hook, lvmetad-scan) can take longer by itself: when 3 bare
# starts of the scanner take over 0.15 s, the 1 s limit is reported as not shown and only a
# 15 s bound (the hook fired, and did not wait out a timeout) is checked.
t=$(date +%s.%N)
for _ in 1 2 3; do "$BIN/lvmetad-scan" --help >/dev/null; done
base=$(since "$t")
if awk -v b="$base" 'BEGIN { exit !(b <= 0.15) }'; then
    LIMIT=1
    echo "3 scanner starts took $base s: limit 1 s"
else
    LIMIT=15
    echo "NOT SHOWN: the 1 s limit (3 scanner starts took $base s: this guest is too slow); bound 15 s"
fi
D=$(attach "${IMGS[4]}")
DT=$(devt "$D")
seen=0
if s=$(wait_for 10 knows "$DT"); then
    seen=1
    awk -v s="$s" -v l="$LIMIT" 'BEGIN { exit !(s <= l) }' && ok "attach $D: lvmetad knew it after $s s" \
        || bad "attach $D: lvmetad knew it only after $s s (limit $LIMIT s)"
else
    bad "attach $D: lvmetad never learnt of it"
fi
losetup -d "$D"
if [ $seen = 0 ]; then
    bad "detach $D: not checked (the attach was never seen)"
elif s=$(wait_for 10 forgot "$DT"); then
    awk -v s="$s" -v l="$LIMIT" 'BEGIN { exit !(s <= l) }' && ok "detach $D: gone from lvmetad after $s s" \
        || bad "detach $D: gone only after $s s (limit $LIMIT s)"
else
    bad "detach $D: still cached"
fi
settle || bad "event handlers still running"

step "event storm: $N PVs attached at once"
t=$(date +%s.%N)
for img in "${IMGS[@]}"; do losetup -r -f "$img" & done
wait_jobs() { local j; for j in $(jobs -p); do [ "$j" = "${UEVENT:-}" ] || [ "$j" = "$LVMETAD" ] || wait "$j"; done; }
wait_jobs
settle || bad "event handlers still running"
echo "settled $(since "$t") s after the first losetup"
same_as_full_scan "storm of $N attaches"

for round in detach attach; do
    step "event storm ($round $N) while a full lvmetad-scan --cache runs"
    "$BIN/lvmetad-scan" --cache >"$T/full-$round.log" 2>&1 &
    full=$!
    if [ $round = attach ]; then
        for img in "${IMGS[@]}"; do losetup -r -f "$img" & done
    else
        for img in "${IMGS[@]}"; do for d in $(losetup -n -O NAME -j "$img"); do losetup -d "$d" & done; done
    fi
    wait_jobs
    wait "$full" || bad "the full scan failed: $(cat "$T/full-$round.log")"
    sed 's/^/    full scan: /' "$T/full-$round.log"
    settle || bad "event handlers still running"
    same_as_full_scan "storm of $N ${round}es during a full scan"
done
waits=$(grep -c 'token_mismatch\|update in progress' "$T/lvmetad.log" || true)
echo "lvmetad log lines about the update token: $waits"

step "mdev off"
if [ $helper = kernel ]; then echo >/proc/sys/kernel/hotplug; else kill "$UEVENT"; wait "$UEVENT" 2>/dev/null; fi
settle

step "udev: udevadm test of our rule"
UDEVD=/lib/systemd/systemd-udevd
if ! command -v udevadm >/dev/null || [ ! -x "$UDEVD" ]; then
    echo "SKIP: udev is not installed (apt-get install udev)"
else
    mkdir -p /etc/udev/rules.d /run/udev
    cp "$T/69-lvmetad-scan.rules" /etc/udev/rules.d/
    udevadm --version | sed 's/^/udev version /'
    if udevadm verify --help >/dev/null 2>&1; then
        udevadm verify /etc/udev/rules.d/69-lvmetad-scan.rules && ok "udevadm verify" || bad "udevadm verify"
    else
        echo "(this udev has no 'udevadm verify': checked with 'udevadm test' and real events)"
    fi
    "$UDEVD" --daemon --resolve-names=never 2>"$T/udevd.err" || bad "systemd-udevd did not start: $(cat "$T/udevd.err")"
    udevadm control --reload
    D=$(attach "${IMGS[6]}")
    udevadm settle -t 20
    udevadm test --action=change "/sys/class/block/${D#/dev/}" >"$T/udevtest.log" 2>&1
    want="$BIN/lvmetad-scan --cache --major $((0x$(stat -L -c '%t' "$D"))) --minor $((0x$(stat -L -c '%T' "$D")))"
    grep -n "69-lvmetad-scan.rules\|lvmetad-scan" "$T/udevtest.log" | head -5
    grep -qF "$want" "$T/udevtest.log" && ok "udevadm test: our rule runs the scanner for a PV" \
        || { tail -20 "$T/udevtest.log"; bad "udevadm test: no $want"; }
    grep -iE "invalid|error|unknown" "$T/udevtest.log" | grep -i "lvmetad" && bad "udevadm test reports problems in our rule"
    truncate -s 8M "$T/plain.img"
    E=$(losetup -f --show "$T/plain.img")
    udevadm settle -t 20
    udevadm test --action=change "/sys/class/block/${E#/dev/}" >"$T/udevtest2.log" 2>&1
    grep -q "$BIN/lvmetad-scan" "$T/udevtest2.log" && bad "udevadm test: our rule runs for a device that never was a PV" \
        || ok "udevadm test: nothing runs for a device that never was a PV"
    losetup -d "$E"

    step "udev: real events through systemd-udevd"
    sleep 1
    if ! pgrep -x systemd-udevd >/dev/null || udevadm control --ping 2>&1 | grep -q "in chroot"; then
        # run-in-vm.sh runs the job in a chroot: udev's tools ignore requests there, and the
        # attach below was not seen through udevd (cause not established).
        echo "NOT SHOWN: real udev events (udev in run-in-vm.sh's chroot: $(udevadm control --ping 2>&1 | head -c 200))"
        losetup -d "$D"
    else
        DT=$(devt "$D")
        if s=$(wait_for 10 knows "$DT"); then
            ok "udevd attach $D: known after $s s"
            losetup -d "$D"
            udevadm settle -t 20
            if s=$(wait_for 10 forgot "$DT"); then ok "udevd detach $D: gone after $s s"; else bad "udevd detach $D: still cached"; fi
        else
            bad "udevd attach $D: not known"
            losetup -d "$D"
        fi
    fi
    udevadm control --exit 2>/dev/null
    same_as_full_scan "after udev events"
fi

kill "$LVMETAD"
wait "$LVMETAD" 2>/dev/null
grep -iE 'panic|error' "$T/lvmetad.log" | head -5
echo
echo "guest events.sh: $fails failure(s), $(since "$T0") s"
[ "$fails" = 0 ]
