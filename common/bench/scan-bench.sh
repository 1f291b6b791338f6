#!/bin/bash
# Scan benchmark (run by hand, as root; not a test): N loop-device PVs (default 64) in 8 VGs with
# linear and striped LVs, written by lvm2 2.03; then wall time, side by side on the same devices
# and the same global_filter, of:
#   lvm pvs -a                          vs  lvmetad-scan DEV... / lvmetad-scan (finds them in /dev)
#   lvm pvscan --cache                  vs  lvmetad-scan --cache (full repopulation of our lvmetad)
# Also checks that lvmetad-scan found all N PVs and 8 VGs. Median of ROUNDS runs each (default 7). Usage: common/bench/scan-bench.sh [N] [ROUNDS]
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

# median_ms CMD...: run ROUNDS times (after one warm-up), print the median wall time in ms.
median_ms() {
    local t=() s e
    q "$@" || true
    for _ in $(seq "$ROUNDS"); do
        s=$(date +%s%N); q "$@" || true; e=$(date +%s%N)
        t+=($(( (e - s) / 1000000 )))
    done
    printf '%s\n' "${t[@]}" | sort -n | sed -n "$(( (ROUNDS + 1) / 2 ))p"
}
row() { printf '%-48s %6s ms\n' "$1" "$2"; }

pvs=$(median_ms lvm pvs -a --config "$CONF")
pvscan=$(median_ms lvm pvscan --cache --config "$CONF")
ours_dev=$(median_ms "$BIN/lvmetad-scan" "${LOOPS[@]}")
ours_json=$(median_ms "$BIN/lvmetad-scan" --json "${LOOPS[@]}")
ours_disc=$(median_ms "$BIN/lvmetad-scan" --config "$W/lvm.conf")
if [ -S "$W/lvmetad.socket" ] && q "$BIN/lvmetad-scan" --cache -s "$W/lvmetad.socket" --config "$W/lvm.conf"; then
    ours_cache=$(median_ms "$BIN/lvmetad-scan" --cache -s "$W/lvmetad.socket" --config "$W/lvm.conf")
else
    ours_cache=n/a
fi
ours_1=$(median_ms "$BIN/lvmetad-scan" -j 1 "${LOOPS[@]}")
ours_direct=$(median_ms "$BIN/lvmetad-scan" --direct --config "$W/lvm.conf")
if [ "$ours_cache" != n/a ]; then
    ours_cache_direct=$(median_ms "$BIN/lvmetad-scan" --cache --direct -s "$W/lvmetad.socket" --config "$W/lvm.conf")
else
    ours_cache_direct=n/a
fi

echo "== $N PVs, median of $ROUNDS runs, $(nproc) CPUs"
row "lvm pvs -a (lvm2 $(lvm version 2>/dev/null | sed -n 's/.*LVM version: *\([^ ]*\).*/\1/p'))" "$pvs"
row "lvm pvscan --cache" "$pvscan"
row "lvmetad-scan DEV... (table)" "$ours_dev"
row "lvmetad-scan --json DEV..." "$ours_json"
row "lvmetad-scan (devices found in /dev, filtered)" "$ours_disc"
row "lvmetad-scan --cache (full repopulation)" "$ours_cache"
row "lvmetad-scan -j 1 DEV... (one thread)" "$ours_1"
row "lvmetad-scan --direct (O_DIRECT like lvm2, /dev)" "$ours_direct"
row "lvmetad-scan --cache --direct" "$ours_cache_direct"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b !~ /^[0-9]+$/) { print "n/a"; exit } if (b == 0) b = 1; printf "%.1fx", a / b }'; }
echo "pvs / lvmetad-scan: $(ratio "$pvs" "$ours_disc") (found in /dev), $(ratio "$pvs" "$ours_dev") (named)"
echo "pvs / lvmetad-scan --direct: $(ratio "$pvs" "$ours_direct")"
echo "pvscan --cache / lvmetad-scan --cache: $(ratio "$pvscan" "$ours_cache"), with --direct $(ratio "$pvscan" "$ours_cache_direct")"
