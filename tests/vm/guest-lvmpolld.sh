#!/bin/bash
# Guest side of tests/shell/lvmpolld-vm-root.sh: Debian's lvm2 tools polling through OUR lvmpolld
# on a real kernel. Needs three disks (-d 160M x3) and LVMPOLLD=<path of our binary>.
#  1. background pvmove of a 64 MiB LV (throttled so it is seen in progress with --dump);
#  2. pvmove --abort of a running pvmove;
#  3. lvconvert --merge of a classic snapshot.
# Checks the data (md5) after each step and that the requests went through our daemon.
set -euo pipefail
[ "${IN_VM:-0}" = 1 ] || { echo "guest-lvmpolld.sh: run me inside run-in-vm.sh" >&2; exit 2; }
[ -x "${LVMPOLLD:-}" ] || { echo "guest-lvmpolld.sh: LVMPOLLD must name our lvmpolld" >&2; exit 2; }
export LVM_SUPPRESS_FD_WARNINGS=1
read -r D1 D2 D3 _ <<<"$VM_DISKS"
[ -b "${D3:-}" ] || { echo "guest-lvmpolld.sh: needs three disks" >&2; exit 2; }

fails=0
T0=$(date +%s.%N)
step() { printf '\n=== [%s s] %s\n' "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" "$*"; }
ok() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
throttle() { echo "$1" >/sys/module/dm_mirror/parameters/raid1_resync_throttle; }
wait_no_pvmove() {
    for _ in $(seq 240); do lvs vg/pvmove0 >/dev/null 2>&1 || return 0; sleep 0.25; done
    return 1
}
count() { grep -c -- "$1" "$LOG" || true; }

cat >/etc/lvm/lvm.conf <<'CONF'
devices { use_devicesfile = 0 obtain_device_list_from_udev = 0 }
global { use_lvmpolld = 1 }
activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }
CONF

W=/tmp/polld
mkdir -p "$W"
LOG=$W/lvmpolld.log
export LVM_LVMPOLLD_SOCKET=$W/lvmpolld.socket
export LVM_LVMPOLLD_PIDFILE=$W/lvmpolld.pid
step "our lvmpolld: $LVMPOLLD -f -l all -B /sbin/lvm (socket and pidfile from the environment)"
"$LVMPOLLD" -f -l all -B /sbin/lvm >"$LOG" 2>&1 &
POLLD=$!
for _ in $(seq 100); do [ -S "$LVM_LVMPOLLD_SOCKET" ] && break; sleep 0.05; done
check "socket from LVM_LVMPOLLD_SOCKET" test -S "$LVM_LVMPOLLD_SOCKET"
check "pidfile from LVM_LVMPOLLD_PIDFILE" test "$(cat "$LVM_LVMPOLLD_PIDFILE")" = "$POLLD"

pvcreate -q -y "$D1" "$D2" "$D3"
vgcreate -q vg "$D1" "$D2" "$D3"
lvcreate -q -y -L 64M -n lv0 vg "$D1"
dd if=/dev/urandom of=/dev/vg/lv0 bs=1M count=64 oflag=direct status=none
sum0=$(md5sum </dev/vg/lv0)

step "1. background pvmove $D1 -> $D2 (throttled)"
throttle 20
pvmove -b -i 1 "$D1" "$D2"
seen=0
for _ in $(seq 100); do
    if "$LVMPOLLD" --dump >"$W/dump1" 2>&1 && grep -q 'type="pvmove"' "$W/dump1"; then seen=1; break; fi
    sleep 0.1
done
sed 's/^/    /' "$W/dump1"
check "--dump shows the running pvmove" test "$seen" = 1
check "--dump lines have the two-space prefix" grep -q '^  poll {' "$W/dump1"
check "dump names the lvpoll child" grep -Eq '^  		lvm_command_pid=[1-9]' "$W/dump1"
throttle 100
check "pvmove finished" wait_no_pvmove
check "lv0 now on $D2" bash -c "lvs --noheadings -o devices vg/lv0 | grep -q '$D2'"
check "data intact after pvmove" test "$(md5sum </dev/vg/lv0)" = "$sum0"
check "our daemon got the pvmove request" grep -q 'pvmove request for' "$LOG"
check "our daemon ran lvm lvpoll" grep -q 'lvpoll --interval 1 --polloperation pvmove vg/pvmove0 -An' "$LOG"
check "lvpoll output was logged" grep -q 'LVPOLL: PID [0-9]*: STDOUT' "$LOG"
check "lvpoll finished successfully" grep -q 'finished successfully' "$LOG"

step "2. pvmove --abort of a running pvmove $D2 -> $D3"
throttle 1
pvmove -b -i 1 "$D2" "$D3"
for _ in $(seq 100); do lvs vg/pvmove0 >/dev/null 2>&1 && break; sleep 0.1; done
pct=$(lvs --noheadings -o copy_percent vg/pvmove0 2>/dev/null | tr -d ' ' || true)
echo "copy_percent before abort: ${pct:-?}"
n_abort=$(count 'abort requested, stopping the poll')
n_pi=$(count 'request="progress_info"')
pvmove --abort -i 1
check "pvmove --abort polled progress through our daemon" test "$(count 'request="progress_info"')" -gt "$n_pi"
throttle 100
check "pvmove0 gone after abort" wait_no_pvmove
check "lv0 stayed on $D2" bash -c "lvs --noheadings -o devices vg/lv0 | grep -q '$D2'"
check "data intact after abort" test "$(md5sum </dev/vg/lv0)" = "$sum0"
check "our daemon ran lvpoll --abort" grep -q 'lvpoll --interval 0 --abort --polloperation pvmove vg/pvmove0 -An' "$LOG"
check "the running poll was stopped by the abort" test "$(count 'abort requested, stopping the poll')" -gt "$n_abort"

step "3. lvconvert --merge of a snapshot"
lvcreate -q -y -s -L 32M -n snap vg/lv0
dd if=/dev/urandom of=/dev/vg/lv0 bs=1M count=8 seek=4 oflag=direct status=none
check "origin changed after the snapshot" test "$(md5sum </dev/vg/lv0)" != "$sum0"
n_pi=$(count 'request="progress_info"')
lvconvert --merge -i 1 vg/snap
check "lvconvert polled progress through our daemon" test "$(count 'request="progress_info"')" -gt "$n_pi"
for _ in $(seq 120); do lvs vg/snap >/dev/null 2>&1 || break; sleep 0.25; done
check "snapshot merged away" bash -c '! lvs vg/snap >/dev/null 2>&1'
check "origin holds the snapshot's data" test "$(md5sum </dev/vg/lv0)" = "$sum0"
check "our daemon ran lvpoll --polloperation merge" grep -q 'lvpoll --interval 1 --polloperation merge vg/' "$LOG"

step "daemon state after everything"
"$LVMPOLLD" --dump >"$W/dump2"
sed 's/^/    /' "$W/dump2"
check "nothing left in progress" bash -c "! grep -q 'state=\"in_progress\"' '$W/dump2'"
zombies=$(awk -v p="$POLLD" '{ pid = $1; sub(/^.*\) /, ""); if ($2 == p && $1 == "Z") print pid }' \
    /proc/[0-9]*/stat 2>/dev/null | wc -l)
check "no zombie children" test "$zombies" = 0
echo "requests seen: $(count 'request for') poll-inits; RSS $(awk '/^VmRSS/ {print $2}' "/proc/$POLLD/status") KiB"
kill "$POLLD"
for _ in $(seq 50); do kill -0 "$POLLD" 2>/dev/null || break; sleep 0.1; done
check "daemon exited on SIGTERM" bash -c "! kill -0 $POLLD 2>/dev/null"
check "socket removed" test ! -e "$LVM_LVMPOLLD_SOCKET"
vgchange -q -an vg >/dev/null || true
echo "--- lvmpolld log (requests and lvpoll lines)"
grep -E 'request for|LVM2 cmd|finished|abort|ERROR|E: ' "$LOG" | head -40 || true
echo
if [ "$fails" -gt 0 ]; then echo "guest-lvmpolld: $fails check(s) failed"; exit 1; fi
echo "guest-lvmpolld: all checks passed"
