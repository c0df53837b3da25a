#!/usr/bin/env bash
# Reading an image without unpacking it, through hexz and through the native equivalents, in
# one run on the same image (needs root: mounts, drop_caches):
#   FUSE: `hexz mount` of a .hxz        against squashfuse of a squashfs holding the image
#   NBD:  `hexz serve --nbd` of a .hxz  against qemu-nbd serving a zstd-compressed qcow2
# Sequential: the whole image in 1 MiB reads. Random: 4 KiB reads at QD1 at random 4 KiB-aligned
# offsets in the first 256 MiB (where the file system's data is). Every measurement starts cold:
# page cache dropped and the server restarted.
#   bench/access.sh [IMAGE]      (default /tmp/hexz-bench/v1.img from bench/os_image.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
img=${1:-/tmp/hexz-bench/v1.img}
[ -s "$img" ] || { echo "bench: $img missing: run bench/os_image.sh" >&2; exit 1; }
for t in squashfuse mksquashfs qemu-nbd qemu-img qemu-io python3 fusermount3; do
  command -v $t >/dev/null || { echo "bench: $t missing (apt-get install squashfuse squashfs-tools qemu-utils fuse3)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/hexz-access.XXXXXX)
hexz=(deno run -q --allow-all cli.ts)
pids=()
cleanup() {
  for m in "$work"/m*; do mountpoint -q "$m" 2>/dev/null && { fusermount3 -uz "$m" || umount -l "$m"; }; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/m1" "$work/m2"
size=$(stat -c %s "$img")
RANDOM_READS=2000
SPAN=$((256 * 1024 * 1024))

"${hexz[@]}" pack "$work/v1.hxz" --disk "$img" --compression zstd -q
mksquashfs "$img" "$work/v1.sqfs" -comp zstd -noappend -quiet >/dev/null
qemu-img convert -f raw -O qcow2 -c -o compression_type=zstd "$img" "$work/v1.qcow2"
name=$(basename "$img")

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l; }

# python3: sequential or random preads of FILE; prints "seconds" or "median_us p99_us iops".
cat >"$work/reads.py" <<'PY'
import os, random, sys, time
path, mode = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDONLY)
if mode == "seq":
    size = os.fstat(fd).st_size
    t = time.perf_counter(); off = 0
    while off < size:
        n = len(os.pread(fd, 1 << 20, off)); off += n
        if n == 0: break
    print(f"{time.perf_counter() - t:.3f}")
else:
    n, span = int(sys.argv[3]), int(sys.argv[4])
    rnd = random.Random(42); lat = []
    t0 = time.perf_counter()
    for _ in range(n):
        off = rnd.randrange(span // 4096) * 4096
        t = time.perf_counter(); os.pread(fd, 4096, off); lat.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    lat.sort()
    print(f"{lat[len(lat)//2]*1e6:.0f} {lat[int(len(lat)*0.99)]*1e6:.0f} {n/total:.0f}")
PY

mount_hexz() { "${hexz[@]}" mount "$work/v1.hxz" "$work/m1" --daemon >/dev/null; }
mount_sq() { squashfuse "$work/v1.sqfs" "$work/m2"; }
fuse_run() { # fuse_run MOUNTFN FILE MODE: cold mount, one measurement, unmount
  drop; $1; drop
  python3 "$work/reads.py" "$2" "${@:3}"
  fusermount3 -u "$(dirname "$2")"
}
fs_seq_h=$(fuse_run mount_hexz "$work/m1/disk" seq)
fs_seq_s=$(fuse_run mount_sq "$work/m2/$name" seq)
read -r fr_h_med fr_h_p99 fr_h_iops <<<"$(fuse_run mount_hexz "$work/m1/disk" rand $RANDOM_READS $SPAN)"
read -r fr_s_med fr_s_p99 fr_s_iops <<<"$(fuse_run mount_sq "$work/m2/$name" rand $RANDOM_READS $SPAN)"

# NBD: one qemu-io process per measurement, its reads given as commands.
python3 - "$size" "$RANDOM_READS" "$SPAN" >"$work/cmds" <<'PY'
import random, sys
size, n, span = map(int, sys.argv[1:])
with open("/dev/stdout", "w") as out:
    seq = [f"read -q {o} 1M" for o in range(0, size, 1 << 20)]
    rnd = random.Random(7)
    rand = [f"read -q {rnd.randrange(span // 4096) * 4096} 4k" for _ in range(n)]
    out.write("\n".join(seq) + "\n--\n" + "\n".join(rand) + "\n")
PY
seq_cmds=$(sed '/^--$/,$d' "$work/cmds")
rand_cmds=$(sed '1,/^--$/d' "$work/cmds")
start_hexz_nbd() {
  "${hexz[@]}" serve "$work/v1.hxz" --nbd --socket "$work/h.sock" --daemon 2>&1 |
    sed -n 's/.*(pid \([0-9]*\)).*/\1/p'
}
start_qemu_nbd() {
  qemu-nbd -r -f qcow2 -k "$work/q.sock" --persistent "$work/v1.qcow2" >/dev/null 2>&1 &
  local p=$!
  for _ in $(seq 100); do [ -S "$work/q.sock" ] && break; sleep 0.05; done
  echo $p
}
nbd_run() { # nbd_run START SOCKET CMDS: seconds for one qemu-io running CMDS, cold
  drop
  local pid t
  pid=$($1)
  pids+=("$pid")
  local args=()
  while IFS= read -r c; do args+=(-c "$c"); done <<<"$3"
  t=$(now)
  qemu-io -r -f raw "nbd+unix:///?socket=$2" "${args[@]}" >/dev/null
  since "$t"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -f "$2"
}
nbd_seq_h=$(nbd_run start_hexz_nbd "$work/h.sock" "$seq_cmds")
nbd_seq_q=$(nbd_run start_qemu_nbd "$work/q.sock" "$seq_cmds")
nbd_rand_h=$(nbd_run start_hexz_nbd "$work/h.sock" "$rand_cmds")
nbd_rand_q=$(nbd_run start_qemu_nbd "$work/q.sock" "$rand_cmds")

mbs() { echo "scale=0; $size / 1000000 / $1" | bc -l; }
r2() { echo "scale=2; $1 / $2" | bc -l; }
us() { echo "scale=0; $1 * 1000000 / $RANDOM_READS" | bc -l; }
mib() { echo "scale=1; $(stat -c %s "$1") / 1048576" | bc -l; }

echo "input: $img ($(echo "scale=0; $size / 1048576" | bc) MiB), $(date -u +%FT%TZ)"
echo "files: v1.hxz $(mib "$work/v1.hxz") MiB (zstd, 64 KiB blocks), v1.sqfs $(mib "$work/v1.sqfs") MiB (zstd, 128 KiB blocks), v1.qcow2 $(mib "$work/v1.qcow2") MiB (zstd clusters)"
echo "$(squashfuse --version 2>&1 | head -1); $(qemu-nbd --version | head -1)"
echo
echo "| access (cold) | native | native | hexz | hexz/native |"
echo "|---|---|---:|---:|---:|"
echo "| FUSE sequential, MB/s | squashfuse | $(mbs "$fs_seq_s") | $(mbs "$fs_seq_h") | $(r2 "$fs_seq_s" "$fs_seq_h") |"
echo "| FUSE random 4 KiB, median µs | squashfuse | $fr_s_med | $fr_h_med | $(r2 "$fr_h_med" "$fr_s_med") (time) |"
echo "| FUSE random 4 KiB, p99 µs | squashfuse | $fr_s_p99 | $fr_h_p99 | $(r2 "$fr_h_p99" "$fr_s_p99") (time) |"
echo "| FUSE random 4 KiB, IOPS at QD1 | squashfuse | $fr_s_iops | $fr_h_iops | $(r2 "$fr_h_iops" "$fr_s_iops") |"
echo "| NBD sequential 1 MiB reads, MB/s | qemu-nbd (qcow2) | $(mbs "$nbd_seq_q") | $(mbs "$nbd_seq_h") | $(r2 "$nbd_seq_q" "$nbd_seq_h") |"
echo "| NBD random 4 KiB, mean µs per read | qemu-nbd (qcow2) | $(us "$nbd_rand_q") | $(us "$nbd_rand_h") | $(r2 "$nbd_rand_h" "$nbd_rand_q") (time) |"
