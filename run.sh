#!/bin/bash
# The main job: build lvmetad, lvmetactl and lvmetad-scan; start lvmetad on a private socket; fill
# it from the bundled sample PV images (tests/data/pv-images, real PVs written by lvm2) the way
# `pvscan --cache` does; print what lvmetad caches; keep serving until Ctrl-C. No root needed.
set -euo pipefail
TOP=$(cd "$(dirname "$0")" && pwd)
cd "$TOP"

echo "== building (cargo build --release -p lvmetad)"
cargo build --release -p lvmetad
BIN=$TOP/target/release

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lvmetad-demo.XXXXXX")
SOCK=$WORK/lvmetad.socket
DAEMON=
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$DAEMON" ] && kill -0 "$DAEMON" 2>/dev/null; then
        kill -TERM "$DAEMON" 2>/dev/null || true
        wait "$DAEMON" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    echo "== stopped; removed $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== decompressing sample PV images into $WORK"
IMAGES=()
for xz in tests/data/pv-images/*.img.xz; do
    img=$WORK/$(basename "$xz" .xz)
    xz -dc "$xz" | cp --sparse=always /dev/stdin "$img"
    IMAGES+=("$img")
done

echo "== starting lvmetad -f on $SOCK"
"$BIN/lvmetad" -f -s "$SOCK" -p "$WORK/lvmetad.pid" &
DAEMON=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || { echo "lvmetad did not create $SOCK" >&2; exit 1; }

# A fresh lvmetad gets a full repopulation, which reads every block device too: this lvm.conf
# keeps the demo to the sample images (its global_filter rejects everything under /dev).
printf 'devices {\n\tglobal_filter = [ "r|^/dev/|" ]\n}\n' >"$WORK/lvm.conf"
echo "== filling it: lvmetad-scan --cache -s $SOCK --config $WORK/lvm.conf ${IMAGES[*]##*/}"
"$BIN/lvmetad-scan" --cache -s "$SOCK" --config "$WORK/lvm.conf" "${IMAGES[@]}"

echo
echo "== what lvmetad caches (lvmetad-scan --show: pv_list, vg_list, vg_lookup)"
"$BIN/lvmetad-scan" --show -s "$SOCK" "${IMAGES[@]}"

cat <<MSG

== lvmetad (pid $DAEMON) keeps serving on $SOCK. Try, in another shell:
     LVM_LVMETAD_SOCKET=$SOCK $BIN/lvmetactl dump
     $BIN/lvmetad-scan --show --json -s $SOCK
   Ctrl-C stops it and removes $WORK.
MSG
wait "$DAEMON"
