#!/bin/bash
# Scan benchmark (run by hand, as root; not a test): N loop-device PVs (default 64) in 8 VGs with
# linear and striped LVs, written by lvm2 2.03; then wall time, side by side on the same devices
# and the same global_filter, of:
#   lvm pvs -a                          vs  lvmetad-scan DEV... / lvmetad-scan (finds them in /dev)
#   lvm pvscan --cache                  vs  lvmetad-scan --cache (full repopulation of our lvmetad)
# Also checks that lvmetad-scan found all N PVs and 8 VGs. Median of ROUNDS round-robin runs
# (default 7). Usage: common/bench/scan-bench.sh [N] [ROUNDS]
set -eu
N=${1:-64}
ROUNDS=${2:-7}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "needs root (loop devices)" >&2; exit 1; }
cargo build --release -q -p lvmetad --manifest-path "$TOP/Cargo.toml"
BIN=$TOP/target/release
W=$(mktemp -d /tmp/scan-bench.XXXXXX)
LOOPS=()
DAEMON=
cleanup() {
    [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
    for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

for i in $(seq 1 "$N"); do
    truncate -s 16M "$W/pv$i.img"
    LOOPS+=("$(losetup -f --show "$W/pv$i.img")")
done
filter=""
for l in "${LOOPS[@]}"; do filter="$filter\"a|^$l\$|\", "; done
filter="[ $filter\"r|.*|\" ]"
printf 'devices {\n\tglobal_filter = %s\n}\n' "$filter" >"$W/lvm.conf"
CONF="global{activation=0} devices{use_devicesfile=0 obtain_device_list_from_udev=0 global_filter=$filter}"
q() { "$@" >/dev/null 2>&1; }

echo "== creating $N PVs in 8 VGs on ${LOOPS[0]}..${LOOPS[-1]}"
q lvm pvcreate --config "$CONF" "${LOOPS[@]}"
per=$((N / 8))
for v in $(seq 0 7); do
    set -- "${LOOPS[@]:$((v * per)):$per}"
    q lvm vgcreate --config "$CONF" -s 1m "bench$v" "$@"
    q lvm lvcreate --config "$CONF" -Zn -n lin -L 8m "bench$v"
    q lvm lvcreate --config "$CONF" -Zn -n str -i2 -L 8m "bench$v"
done

"$BIN/lvmetad" -f -s "$W/lvmetad.socket" -p "$W/lvmetad.pid" >"$W/lvmetad.log" 2>&1 &
DAEMON=$!
for _ in $(seq 100); do [ -S "$W/lvmetad.socket" ] && break; sleep 0.05; done

found=$("$BIN/lvmetad-scan" --json "${LOOPS[@]}")
[ "$(echo "$found" | grep -c '"pv_name"')" = "$N" ] || { echo "lvmetad-scan did not find $N PVs" >&2; exit 1; }
[ "$(echo "$found" | grep -c '"vg_name": "bench[0-9]", "vg_uuid"')" = 8 ] || { echo "lvmetad-scan did not find 8 VGs" >&2; exit 1; }

# The commands, timed round-robin (one run of each per round, after one warm-up round) so that
# load from elsewhere hits all of them alike; the median of ROUNDS runs is reported.
LABELS=() CMDS=()
add() { LABELS+=("$1"); CMDS+=("$2"); }
add "lvm pvs -a (lvm2 $(lvm version 2>/dev/null | sed -n 's/.*LVM version: *\([^ ]*\).*/\1/p'))" \
    "lvm pvs -a --config '$CONF'"
add "lvm pvscan --cache" "lvm pvscan --cache --config '$CONF'"
add "lvmetad-scan DEV... (table)" "$BIN/lvmetad-scan ${LOOPS[*]}"
add "lvmetad-scan --json DEV..." "$BIN/lvmetad-scan --json ${LOOPS[*]}"
add "lvmetad-scan (devices found in /dev, filtered)" "$BIN/lvmetad-scan --config $W/lvm.conf"
add "lvmetad-scan -j 1 (one thread, /dev)" "$BIN/lvmetad-scan -j 1 --config $W/lvm.conf"
add "lvmetad-scan --buffered (page cache, /dev)" "$BIN/lvmetad-scan --buffered --config $W/lvm.conf"
if [ -S "$W/lvmetad.socket" ] && q "$BIN/lvmetad-scan" --cache -s "$W/lvmetad.socket" --config "$W/lvm.conf"; then
    add "lvmetad-scan --cache (full repopulation)" "$BIN/lvmetad-scan --cache -s $W/lvmetad.socket --config $W/lvm.conf"
    add "lvmetad-scan --cache --buffered" "$BIN/lvmetad-scan --cache --buffered -s $W/lvmetad.socket --config $W/lvm.conf"
fi
declare -A T
for r in $(seq 0 "$ROUNDS"); do
    for i in "${!CMDS[@]}"; do
        s=$(date +%s%N); eval "${CMDS[$i]}" >/dev/null 2>&1 || true; e=$(date +%s%N)
        [ "$r" = 0 ] || T[$i]="${T[$i]:-} $(( (e - s) / 1000000 ))"
    done
done
median() { printf '%s\n' ${T[$1]} | sort -n | sed -n "$(( (ROUNDS + 1) / 2 ))p"; }
echo "== $N PVs, median of $ROUNDS round-robin runs, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
M=()
for i in "${!CMDS[@]}"; do
    M[$i]=$(median "$i")
    printf '%-50s %6s ms\n' "${LABELS[$i]}" "${M[$i]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == "" || b == 0) { print "n/a"; exit } printf "%.1fx", a / b }'; }
echo "lvm pvs / lvmetad-scan: $(ratio "${M[0]}" "${M[4]}") (found in /dev), $(ratio "${M[0]}" "${M[2]}") (named), $(ratio "${M[0]}" "${M[6]}") (--buffered)"
echo "lvm pvscan --cache / lvmetad-scan --cache: $(ratio "${M[1]}" "${M[7]:-}"), with --buffered $(ratio "${M[1]}" "${M[8]:-}")"
