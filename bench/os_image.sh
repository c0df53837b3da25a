#!/usr/bin/env bash
# Builds the bench's real data: a Debian rootfs image (v1, `mkfs.ext4 -d` of a debootstrap) and
# the same image after `apt-get install` in a chroot of a loop-mounted copy (v2), raw ext4
# file system images of 1 GiB.
#   bench/os_image.sh [DIR]      (default /tmp/hexz-bench; reuses images already built)
# Needs root, debootstrap and e2fsprogs (apt-get install debootstrap e2fsprogs).
set -euo pipefail
dir=${1:-/tmp/hexz-bench}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$dir"
cd "$dir"
image() { # image NAME: a 1 GiB ext4 image holding rootfs/
  truncate -s 1G "$1.tmp"
  mkfs.ext4 -q -F -d rootfs -E root_owner=0:0 "$1.tmp"
  mv "$1.tmp" "$1"
}
if [ ! -s v1.img ]; then
  rm -rf rootfs v2.img
  echo "== debootstrap (minbase, bookworm)" >&2
  debootstrap --variant=minbase bookworm rootfs "$mirror" >debootstrap.log 2>&1 ||
    { tail -20 debootstrap.log >&2; exit 1; }
  image v1.img
fi
if [ ! -s v2.img ]; then
  # v2 is v1's own file system, updated in place (as a VM disk would be): loop-mount a copy
  # and install packages in a chroot of it.
  echo "== apt-get install inside a loop-mounted copy of v1 (v2)" >&2
  cp --sparse=always v1.img v2.tmp
  mkdir -p mnt
  mount -o loop v2.tmp mnt
  cleanup() {
    umount mnt/proc 2>/dev/null || true
    umount mnt 2>/dev/null || true
  }
  trap cleanup EXIT
  mount --bind /proc mnt/proc
  cp /etc/resolv.conf mnt/etc/resolv.conf
  chroot mnt apt-get update -qq >apt.log 2>&1 || true
  chroot mnt apt-get install -y -qq --no-install-recommends \
    python3-minimal curl ca-certificates >>apt.log 2>&1 || { tail -20 apt.log >&2; exit 1; }
  chroot mnt apt-get clean
  cleanup
  trap - EXIT
  mv v2.tmp v2.img
fi
ls -l "$dir"/v1.img "$dir"/v2.img >&2
