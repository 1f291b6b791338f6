#!/bin/sh
# PID 1 of the QEMU guest started by tests/vm/run-in-vm.sh (busybox sh, inside the initramfs).
#
# It mounts the host's root (9p, read-only) under a tmpfs-backed overlay, prepares that overlay as a
# usable root (proc, sys, dev, run, the guest kernel's modules), runs the job chrooted into it, and
# hands back the job's output and exit status through the writable "vmout" share. It then powers
# the machine off; QEMU runs with -no-reboot, so a reboot ends it.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

# KVER, BOOT_MODULES, DM_MODULES: written by run-in-vm.sh when it built this initramfs.
. /etc/vm-kernel.conf

console() { echo "vm-init: $*" >/dev/console; }
die() {
    console "$*"
    echo 1 >/proc/sys/kernel/sysrq
    echo b >/proc/sysrq-trigger
}
ninep() { # TAG DIR [extra mount options]
    mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000${3:+,$3}" "$1" "$2"
}

echo /sbin/modprobe >/proc/sys/kernel/modprobe
for m in $BOOT_MODULES; do modprobe "$m" || console "cannot load $m"; done

mkdir -p /vmout /host /overlay /root
ninep vmout /vmout cache=none || die "cannot mount the run directory share"
# VM_OUT VM_MODDIR VM_RWDIRS VM_MODULES VM_VERBOSE: this run's settings.
. /vmout/vm.env
[ "$VM_VERBOSE" = 1 ] || echo 1 >/proc/sys/kernel/printk

ninep host /host ro,cache=loose || die "cannot mount the host root"
# The initramfs carries only the modules the boot needs; the whole tree of the cached kernel
# package (it lives on the host, under the cache) replaces it so any module can be loaded.
if [ -f "/host$VM_MODDIR/modules.dep" ]; then
    mount -o bind "/host$VM_MODDIR" "/lib/modules/$KVER"
fi

mount -t tmpfs -o mode=755 tmpfs /overlay
mkdir -p /overlay/upper /overlay/work
mount -t overlay -o lowerdir=/host,upperdir=/overlay/upper,workdir=/overlay/work overlay /root \
    || die "cannot mount the overlay root"

R=/root
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount -t devtmpfs devtmpfs "$R/dev"
mkdir -p "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts "$R/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
ln -sf /proc/self/fd "$R/dev/fd"
for i in 0:stdin 1:stdout 2:stderr; do ln -sf "/proc/self/fd/${i%%:*}" "$R/dev/${i#*:}"; done
mount -t tmpfs -o mode=755 tmpfs "$R/run"
mkdir -p "$R/run/lock" "$R/run/lvm"
mkdir -p "$R/lib/modules/$KVER"
mount -o bind "/lib/modules/$KVER" "$R/lib/modules/$KVER"
# A host without kmod gets busybox's module tools in the overlay (busybox picks the applet by name).
for tool in modprobe insmod rmmod lsmod modinfo; do
    [ -e "$R/sbin/$tool" ] || [ -L "$R/sbin/$tool" ] || cp /bin/busybox "$R/sbin/$tool"
done
mkdir -p "$R$VM_OUT"
mount -o bind /vmout "$R$VM_OUT"
n=0
for dir in $VM_RWDIRS; do
    mkdir -p "$R$dir"
    ninep "rw$n" "$R$dir" cache=none || console "cannot mount the writable share $dir"
    n=$((n + 1))
done

ip link set lo up 2>/dev/null
hostname vm
for m in $DM_MODULES $VM_MODULES; do modprobe "$m" || console "cannot load $m"; done

cut -d' ' -f1 /proc/uptime >/vmout/boot-seconds
console "running the job"
env -i /bin/chroot "$R" /bin/bash "$VM_OUT/job.sh" </dev/null >/vmout/output.log 2>&1
status=$?
cut -d' ' -f1 /proc/uptime >/vmout/end-seconds
console "job exited with status $status"
kill -TERM -1 2>/dev/null
sleep 0.3
kill -KILL -1 2>/dev/null
dmesg >/vmout/dmesg.log 2>/dev/null
# The status file appears last, in one rename: the host treats its presence as "the job ended".
echo "$status" >/vmout/rc.new
mv /vmout/rc.new /vmout/rc
sync
reboot -f
