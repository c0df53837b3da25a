#!/usr/bin/env bash
# Builds the bench's real data: a Debian rootfs image (v1) and the same image after
# `apt-get install` inside it (v2), as raw ext4 file system images of 1 GiB.
#   bench/os_image.sh [DIR]      (default /tmp/hexz-bench; reuses images already built)
# Needs root, debootstrap and e2fsprogs (apt-get install debootstrap e2fsprogs).
set -euo pipefail
dir=${1:-/tmp/hexz-bench}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$dir"
cd "$dir"
if [ ! -s v1.img ] || [ ! -s v2.img ]; then
  rm -rf rootfs v1.img v2.img
  echo "== debootstrap (minbase, bookworm)" >&2
  debootstrap --variant=minbase bookworm rootfs "$mirror" >debootstrap.log 2>&1 ||
    { tail -20 debootstrap.log >&2; exit 1; }
  image() { # image NAME: a 1 GiB ext4 image holding rootfs/
    truncate -s 1G "$1.tmp"
    mkfs.ext4 -q -F -d rootfs -E root_owner=0:0 "$1.tmp"
    mv "$1.tmp" "$1"
  }
  image v1.img
  echo "== apt-get install inside (v2)" >&2
  mount --bind /proc rootfs/proc
  trap 'umount rootfs/proc 2>/dev/null || true' EXIT
  chroot rootfs apt-get install -y -qq --no-install-recommends \
    python3-minimal curl ca-certificates >apt.log 2>&1 || { tail -20 apt.log >&2; exit 1; }
  chroot rootfs apt-get clean
  umount rootfs/proc
  trap - EXIT
  image v2.img
fi
ls -l "$dir"/v1.img "$dir"/v2.img >&2
