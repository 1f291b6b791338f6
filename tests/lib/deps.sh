# Debian packages the test suite and the QEMU tier use. Sourced by test.sh and run.sh.
# ensure_packages installs the missing ones when running as root (apt-get), and is quiet otherwise.

TEST_PACKAGES="lvm2 socat busybox-static cpio xz-utils qemu-system-x86 corosync libcpg-dev libcfg-dev
libcmap-dev libquorum-dev libvotequorum-dev libcorosync-common-dev pkg-config iproute2 mandoc
thin-provisioning-tools musl-tools jq udev strace groff-base libdevmapper-dev gcc
rustc-web cargo-web rust-web-src libunwind-14-dev"
# (the last line: the static musl build of pkg-static.sh, see scripts/README.md)

ensure_packages() {
    local missing="" p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "note: missing packages:$missing (not root or no apt-get: tests that need them skip)" >&2
        return 0
    fi
    echo "installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 \
        || apt-get install -y -qq $missing >/dev/null
}
