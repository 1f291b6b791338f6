#!/bin/bash
# run-in-vm.sh: run one host command as root inside a throw-away QEMU guest that boots Debian's
# own kernel (device-mapper and every dm target as modules). The guest sees the host's root
# filesystem read-only over virtio-9p with a tmpfs overlay on top (writable, discarded at power-off);
# the command's output streams back and its exit status becomes ours. See tests/vm/README.md.
#
#   tests/vm/run-in-vm.sh [options] [--] COMMAND [ARGS...]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_CACHE=${VM_CACHE:-/var/tmp/lvm2-daemons-vm/cache}
VM_RUNS=${VM_RUNS:-/var/tmp/lvm2-daemons-vm/runs}

# Modules the initramfs loads before mounting anything, then the device-mapper set every job gets.
BOOT_MODULES="virtio_pci 9pnet_virtio 9p overlay"
DM_MODULES="crc32c_generic virtio_blk loop dm_mod dm_thin_pool dm_mirror dm_log_userspace dm_snapshot dm_zero"

usage() {
    cat <<'USAGE'
usage: run-in-vm.sh [options] [--] COMMAND [ARGS...]

Runs COMMAND (a host path, or a name on PATH) as root in a QEMU guest booting Debian's kernel.
The guest sees the host root read-only with a throw-away writable overlay, in the same current
directory. Prints the command's output; exits with its status (124: VM timed out, 125: VM died
without a status, 2: usage).

  -d SIZE     attach a fresh sparse disk (256M, 1G; a plain number is MiB) as the next /dev/vdX
  -D FILE     attach an existing raw image as the next /dev/vdX
  -S FILE     attach an existing raw image shared with other VMs (no image locking, every write
              bypasses the host page cache: cache=none) as the next /dev/vdX
  -n TAP[,MAC] a virtio NIC on the existing tap device TAP (run QEMU where TAP lives)
  -w DIR      share host DIR writable at the same path (no whitespace in the path)
  -e VAR=VAL  export VAR=VAL to the command
  -M MODULE   modprobe MODULE in the guest before the command
  -t SECS     wall-clock limit for the whole VM (default 600)
  -m MB       guest memory (default 1024)
  -c N        guest CPUs (default 2)
  -o DIR      keep the run files (output.log, rc, dmesg.log, console.log, job.sh) in DIR
  -k          keep the temporary run directory
  -v          show the guest's serial console live
  -P          only fetch and build the kernel and initramfs cache, then exit (no COMMAND:
              run it where the network is, before booting guests in a network namespace)
  -h          this help
(-d, -D, -S, -n, -w, -e and -M repeat.)

The command sees IN_VM=1, VM_OUT (the run directory, writable, shared with the host),
VM_DISKS (the attached disks, in order) and DM_DISABLE_UDEV=1 (the guest has no udev).
Environment: VM_CACHE (kernel and initramfs cache, default /var/tmp/lvm2-daemons-vm/cache),
VM_RUNS (run directories, default /var/tmp/lvm2-daemons-vm/runs), VM_KERNEL_PKG (a Debian kernel
package to use instead of the one linux-image-amd64 depends on), VM_NO_PVH=1 (boot the bzImage).
USAGE
}

say() { echo "run-in-vm: $*" >&2; }
usage_error() { say "$*"; exit 2; }
die() { say "$*"; exit 125; }

# --- options ----------------------------------------------------------------------------------
timeout_secs=${VM_TIMEOUT:-600}
mem_mb=${VM_MEM:-1024}
cpus=${VM_SMP:-2}
verbose=0 keep=0 outdir="" prepare_only=0
new_disks=() images=() rw_dirs=() env_vars=() extra_modules=() nics=()
while getopts ":d:D:S:n:w:e:M:t:m:c:o:kvPh" opt; do
    case $opt in
    d) [[ $OPTARG =~ ^[0-9]+[KMGT]?$ ]] || usage_error "-d wants a size like 256M or 1G"
       [[ $OPTARG =~ [KMGT]$ ]] || OPTARG="${OPTARG}M"
       new_disks+=("$OPTARG") ;;
    D) [ -f "$OPTARG" ] || usage_error "no such image: $OPTARG"
       images+=("$(readlink -f "$OPTARG")") ;;
    S) [ -f "$OPTARG" ] || usage_error "no such image: $OPTARG"
       images+=("shared:$(readlink -f "$OPTARG")") ;;
    n) [[ $OPTARG =~ ^[A-Za-z0-9_.-]+(,([0-9a-f]{2}:){5}[0-9a-f]{2})?$ ]] || usage_error "-n wants TAP or TAP,MAC"
       nics+=("$OPTARG") ;;
    w) [ -d "$OPTARG" ] || usage_error "no such directory: $OPTARG"
       [[ $OPTARG != *[[:space:]]* ]] || usage_error "-w: the path must not contain whitespace"
       rw_dirs+=("$(readlink -f "$OPTARG")") ;;
    e) [[ $OPTARG =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || usage_error "-e wants VAR=VALUE"
       env_vars+=("$OPTARG") ;;
    M) extra_modules+=("$OPTARG") ;;
    t) timeout_secs=$OPTARG ;;
    m) mem_mb=$OPTARG ;;
    c) cpus=$OPTARG ;;
    o) outdir=$OPTARG ;;
    k) keep=1 ;;
    v) verbose=1 ;;
    P) prepare_only=1 ;;
    h) usage; exit 0 ;;
    :) usage_error "-$OPTARG needs an argument" ;;
    *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || [ $prepare_only = 1 ] || { usage >&2; exit 2; }
for n in "$timeout_secs" "$mem_mb" "$cpus"; do
    [[ $n =~ ^[0-9]+$ ]] || usage_error "-t, -m and -c want whole numbers"
done
[ "$(id -u)" = 0 ] || usage_error "must run as root (QEMU exports / with security_model=none)"

# --- host tools ---------------------------------------------------------------------------------
ensure_host_tools() {
    local missing=()
    command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
    [ -x /bin/busybox ] && dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' \
        || missing+=(busybox-static)
    command -v cpio >/dev/null || missing+=(cpio)
    command -v xz >/dev/null || missing+=(xz-utils)
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >&2 \
        || { apt-get update -q >&2 && apt-get install -y -q "${missing[@]}" >&2; } \
        || die "cannot install ${missing[*]}"
}

# --- the kernel: a Debian package, downloaded and unpacked once into the cache ----------------------
kernel_package_now() { # the package linux-image-amd64 depends on today
    local pkg
    for attempt in 1 2; do
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null \
            | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n1)
        [ -n "$pkg" ] && { echo "$pkg"; return 0; }
        [ $attempt = 1 ] && apt-get update -q >>"$VM_CACHE/apt.log" 2>&1
    done
    die "cannot tell which kernel package to use; set VM_KERNEL_PKG"
}

unpack_kernel() { # PKG: make $VM_CACHE/PKG/root hold the package's files plus modules.dep
    local pkg=$1 dir=$VM_CACHE/$1 kver
    [ -e "$dir/.ready" ] && return 0
    say "downloading and unpacking $pkg (once)"
    rm -rf "$dir"
    mkdir -p "$dir/deb"
    if ! (cd "$dir/deb" && { apt-get download "$pkg" || { apt-get update -q && apt-get download "$pkg"; }; }) \
        >>"$VM_CACHE/apt.log" 2>&1; then
        rm -rf "$dir"
        return 1
    fi
    dpkg-deb -x "$dir"/deb/*.deb "$dir/root"
    rm -rf "$dir/deb"
    kver=$(ls "$dir/root/lib/modules")
    # The package's postinst would run depmod; we never install it, so run busybox's.
    /bin/busybox depmod -b "$dir/root" "$kver"
    touch "$dir/.ready"
}

choose_kernel() {
    local pkg=${VM_KERNEL_PKG:-}
    if [ -n "$pkg" ]; then
        unpack_kernel "$pkg" || { tail -n 20 "$VM_CACHE/apt.log" >&2; die "cannot fetch $pkg"; }
    else
        # Stay on the package this cache already holds, unless the archive has dropped it.
        pkg=$(cat "$VM_CACHE/kernel-pkg" 2>/dev/null || true)
        if [ -z "$pkg" ] || ! unpack_kernel "$pkg"; then
            pkg=$(kernel_package_now)
            unpack_kernel "$pkg" || { tail -n 20 "$VM_CACHE/apt.log" >&2; die "cannot fetch $pkg"; }
        fi
        echo "$pkg" >"$VM_CACHE/kernel-pkg"
    fi
    KDIR=$VM_CACHE/$pkg
    KVER=$(ls "$KDIR/root/lib/modules")
    MODDIR=$KDIR/root/lib/modules/$KVER
    [ -f "$KDIR/root/boot/vmlinuz-$KVER" ] || die "$pkg holds no kernel image"
}

# QEMU can boot an uncompressed ELF vmlinux through its PVH note, skipping the firmware and the
# in-guest decompression (about 3 s under TCG). Debian's bzImage carries the kernel as an xz stream.
kernel_image() {
    local bz=$KDIR/root/boot/vmlinuz-$KVER offset
    if [ ! -e "$KDIR/.vmlinux-done" ]; then
        offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bz" | head -n1 | cut -d: -f1 || true)
        if [ -n "$offset" ]; then
            tail -c +"$((offset + 1))" "$bz" | xz -dc >"$KDIR/vmlinux.part" 2>/dev/null || true
            [ "$(head -c 4 "$KDIR/vmlinux.part" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] \
                && mv "$KDIR/vmlinux.part" "$KDIR/vmlinux"
            rm -f "$KDIR/vmlinux.part"
        fi
        touch "$KDIR/.vmlinux-done"
    fi
    if [ -f "$KDIR/vmlinux" ] && [ "${VM_NO_PVH:-0}" != 1 ]; then
        echo "$KDIR/vmlinux"
    else
        echo "$bz"
    fi
}

# --- the initramfs: busybox, guest-init.sh and the modules the boot and device-mapper need ----------
module_closure() { # NAMES...: print the modules.dep paths of the modules and all they depend on
    local -A path_of deps_of seen
    local line mod name dep
    while IFS= read -r line; do
        mod=${line%%:*}
        name=${mod##*/}; name=${name%%.ko*}; name=${name//-/_}
        path_of[$name]=$mod
        deps_of[$name]=${line#*:}
    done <"$MODDIR/modules.dep"
    local queue=("$@")
    while [ ${#queue[@]} -gt 0 ]; do
        name=${queue[0]//-/_}
        queue=("${queue[@]:1}")
        [ -n "$name" ] && [ -z "${seen[$name]:-}" ] || continue
        seen[$name]=1
        [ -n "${path_of[$name]:-}" ] || { say "note: kernel has no module $name"; continue; }
        echo "${path_of[$name]}"
        for dep in ${deps_of[$name]}; do
            dep=${dep##*/}; dep=${dep%%.ko*}
            queue+=("$dep")
        done
    done
}

build_initramfs() { # OUT
    local out=$1 stage m applet
    stage=$(mktemp -d "$KDIR/initramfs.XXXXXX")
    mkdir -p "$stage"/{bin,sbin,etc,proc,sys,dev,tmp,lib/modules/"$KVER"}
    cp /bin/busybox "$stage/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$stage/bin/$applet"
    done
    ln -s ../bin/busybox "$stage/sbin/modprobe"
    local wanted=($BOOT_MODULES $DM_MODULES crc32c_intel virtio_console)
    for m in "$MODDIR"/kernel/drivers/md/*.ko* "$MODDIR"/kernel/drivers/md/persistent-data/*.ko*; do
        [ -e "$m" ] && { m=${m##*/}; wanted+=("${m%%.ko*}"); }
    done
    while IFS= read -r m; do
        mkdir -p "$stage/lib/modules/$KVER/${m%/*}"
        cp "$MODDIR/$m" "$stage/lib/modules/$KVER/$m"
    done < <(module_closure "${wanted[@]}")
    for m in modules.builtin modules.builtin.modinfo modules.order; do
        [ -f "$MODDIR/$m" ] && cp "$MODDIR/$m" "$stage/lib/modules/$KVER/"
    done
    /bin/busybox depmod -b "$stage" "$KVER"
    printf 'KVER=%q\nBOOT_MODULES=%q\nDM_MODULES=%q\n' "$KVER" "$BOOT_MODULES" "$DM_MODULES" \
        >"$stage/etc/vm-kernel.conf"
    install -m 755 "$HERE/guest-init.sh" "$stage/init"
    (cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$out.part"
    mv "$out.part" "$out"
    rm -rf "$stage"
}

initramfs() { # rebuilt whenever guest-init.sh, the module lists, the kernel or busybox change
    local out=$KDIR/initramfs.cpio.gz stamp
    stamp=$(cat "$HERE/guest-init.sh" /bin/busybox <(echo "$KVER $BOOT_MODULES $DM_MODULES") \
        | md5sum | cut -d' ' -f1)
    if [ ! -f "$out" ] || [ "$(cat "$out.stamp" 2>/dev/null)" != "$stamp" ]; then
        build_initramfs "$out"
        echo "$stamp" >"$out.stamp"
    fi
    echo "$out"
}

ensure_host_tools
mkdir -p "$VM_CACHE" "$VM_RUNS"
# One runner at a time builds or checks the cache; boots then run in parallel.
exec {cache_lock}>"$VM_CACHE/.lock"
flock "$cache_lock"
choose_kernel
KERNEL=$(kernel_image)
INITRD=$(initramfs)
flock -u "$cache_lock"
exec {cache_lock}>&-
[ $prepare_only = 0 ] || exit 0

# --- this run's directory: the guest's VM_OUT -------------------------------------------------------
if [ -n "$outdir" ]; then
    mkdir -p "$outdir"
    RUN=$(readlink -f "$outdir")
    keep=1
    (cd "$RUN" && rm -f rc rc.new output.log dmesg.log console.log boot-seconds end-seconds job.sh vm.env qemu.pid)
else
    RUN=$(mktemp -d "$VM_RUNS/run.XXXXXX")
fi
qemu_pid="" tail_pid=""
finish() {
    [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
    [ -z "$tail_pid" ] || kill "$tail_pid" 2>/dev/null || true
    if [ "$keep" = 1 ]; then
        rm -f "$RUN"/disk*.img
        say "run files kept in $RUN"
    else
        rm -rf "$RUN"
    fi
}
trap finish EXIT
trap 'exit 130' INT TERM

# The command: a path is resolved on the host (the guest sees the same path); a file that is not
# executable runs with /bin/sh.
cmd=("$@")
if [[ ${cmd[0]} == */* ]]; then
    [ -e "${cmd[0]}" ] || usage_error "no such file: ${cmd[0]}"
    cmd[0]=$(readlink -f "${cmd[0]}")
    [ -x "${cmd[0]}" ] || cmd=(/bin/sh "${cmd[@]}")
fi

drive_args=() guest_disks=()
attach() { # IMAGE, or shared:IMAGE (several VMs write it: no locking, no host-side cache)
    local i=${#guest_disks[@]} letters=abcdefghijklmnopqrstuvwxyz img=$1 mode=cache=unsafe
    if [[ $img == shared:* ]]; then
        img=${img#shared:}
        mode=cache=none,file.locking=off
    fi
    drive_args+=(-drive "file=$img,if=none,id=disk$i,format=raw,$mode,aio=threads"
        -device "virtio-blk-pci,drive=disk$i,serial=vmdisk$i")
    guest_disks+=("/dev/vd${letters:$i:1}")
}
for size in "${new_disks[@]}"; do
    img=$RUN/disk${#guest_disks[@]}.img
    truncate -s "$size" "$img"
    attach "$img"
done
for img in "${images[@]}"; do attach "$img"; done
[ ${#guest_disks[@]} -le 26 ] || usage_error "at most 26 disks"
net_args=()
for i in "${!nics[@]}"; do
    tap=${nics[$i]%%,*} mac=${nics[$i]#*,}
    [ "$mac" != "${nics[$i]}" ] || mac=$(printf '52:54:00:%02x:%02x:%02x' $((RANDOM % 256)) $((RANDOM % 256)) "$i")
    net_args+=(-netdev "tap,id=net$i,ifname=$tap,script=no,downscript=no"
        -device "virtio-net-pci,netdev=net$i,mac=$mac")
done

share_args=(
    -fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap"
    -device "virtio-9p-pci,fsdev=hostroot,mount_tag=host"
    -fsdev "local,id=vmout,path=$RUN,security_model=none"
    -device "virtio-9p-pci,fsdev=vmout,mount_tag=vmout"
)
for i in "${!rw_dirs[@]}"; do
    share_args+=(-fsdev "local,id=rw$i,path=${rw_dirs[$i]},security_model=none"
        -device "virtio-9p-pci,fsdev=rw$i,mount_tag=rw$i")
done

printf 'VM_OUT=%q\nVM_MODDIR=%q\nVM_RWDIRS=%q\nVM_MODULES=%q\nVM_VERBOSE=%q\n' \
    "$RUN" "$MODDIR" "${rw_dirs[*]}" "${extra_modules[*]}" "$verbose" >"$RUN/vm.env"
{
    echo '#!/bin/bash'
    echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    echo 'export HOME=/root LANG=C.UTF-8 TERM=dumb IN_VM=1'
    # No udev runs in the guest: libdm must make the /dev/mapper nodes itself.
    echo 'export DM_DISABLE_UDEV=1'
    printf 'export VM_OUT=%q VM_DISKS=%q\n' "$RUN" "${guest_disks[*]}"
    for e in "${env_vars[@]}"; do printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"; done
    printf 'cd %q 2>/dev/null || cd /\n' "$PWD"
    printf 'exec'
    printf ' %q' "${cmd[@]}"
    echo
} >"$RUN/job.sh"

if [ "$verbose" = 1 ]; then console=(-serial stdio); else console=(-serial "file:$RUN/console.log"); fi
cmdline="console=ttyS0 quiet loglevel=4 panic=-1 8250.nr_uarts=1 tsc=reliable no_timer_check"
cmdline+=" mitigations=off random.trust_cpu=on"

started=$(date +%s.%N)
# KVM is not used: TCG works everywhere, including in a VM without nested virtualisation (this
# build host's /dev/kvm aborts on MSR 0x10a with -cpu host, and hangs the guest without it).
accel=(-accel tcg,thread=multi -cpu max)
timeout -k 5 "$timeout_secs" qemu-system-x86_64 \
    "${accel[@]}" -m "$mem_mb" -smp "$cpus" -pidfile "$RUN/qemu.pid" \
    -nodefaults -no-user-config -display none -monitor none -no-reboot \
    "${console[@]}" -kernel "$KERNEL" -initrd "$INITRD" -append "$cmdline" \
    "${share_args[@]}" "${drive_args[@]}" "${net_args[@]}" </dev/null &
qemu_pid=$!
touch "$RUN/output.log"
tail -n +1 -s 0.2 -f --pid="$qemu_pid" "$RUN/output.log" &
tail_pid=$!
qemu_status=0
wait "$qemu_pid" || qemu_status=$?
qemu_pid=""
wait "$tail_pid" || true
tail_pid=""
ended=$(date +%s.%N)

if [ -f "$RUN/rc" ]; then
    status=$(cat "$RUN/rc")
    awk -v rc="$status" -v b="$(cat "$RUN/boot-seconds" 2>/dev/null || echo 0)" \
        -v e="$(cat "$RUN/end-seconds" 2>/dev/null || echo 0)" -v t0="$started" -v t1="$ended" \
        'BEGIN { printf "run-in-vm: exit %s; guest boot-to-command %.1fs, command %.1fs, wall %.1fs\n", rc, b, e - b, t1 - t0 }' >&2
    exit "$status"
fi
if [ "$qemu_status" = 124 ] || [ "$qemu_status" = 137 ]; then
    say "VM timed out after ${timeout_secs}s"
    status=124
else
    say "VM ended (qemu status $qemu_status) without reporting the command's status"
    status=125
fi
if [ "$verbose" != 1 ] && [ -f "$RUN/console.log" ]; then
    echo "--- last console lines:" >&2
    tail -n 30 "$RUN/console.log" >&2
fi
exit "$status"
