#!/usr/bin/env bash
# A directory tree against tar piped into the native compressors, in one run (best of 3):
#   bench/build.sh [DIR]      (default /tmp/hexz-bench/rootfs from bench/os_image.sh)
# Prints a markdown table of seconds, output sizes and hexz/native time ratios (< 1 = faster).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/hexz-bench/rootfs}
[ -d "$dir" ] || { echo "bench: $dir missing: run bench/os_image.sh" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
hexz=(deno run -q --allow-all cli.ts)
tar -C "$dir" -cf - . >/dev/null

. bench/_lib.sh

t_tl=$(best sh -c "tar -C '$dir' -cf - . | lz4 -1 -q > '$work/t.tar.lz4'")
t_hl=$(best "${hexz[@]}" build "$dir" "$work/l.hxz" --compression lz4 -f -q)
t_tz=$(best sh -c "tar -C '$dir' -cf - . | zstd -3 -T1 -q > '$work/t.tar.zst'")
t_hz=$(best "${hexz[@]}" build "$dir" "$work/z.hxz" --compression zstd -f -q)
"${hexz[@]}" check "$work/z.hxz" -q

files=$(find "$dir" -type f | wc -l)
echo "input: $dir, $(du -sm "$dir" | cut -f1) MiB in $files files, $(nproc) cores, $(date -u +%FT%TZ)"
echo
echo "| job | native | s | hexz | s | hexz/native time | sizes (MiB) native / hexz |"
echo "|---|---|---:|---|---:|---:|---|"
echo "| tree, lz4 | tar \| lz4 -1 | $t_tl | build --compression lz4 | $t_hl | $(ratio "$t_hl" "$t_tl") | $(mib "$(size "$work/t.tar.lz4")") / $(mib "$(size "$work/l.hxz")") |"
echo "| tree, zstd | tar \| zstd -3 -T1 | $t_tz | build --compression zstd | $t_hz | $(ratio "$t_hz" "$t_tz") | $(mib "$(size "$work/t.tar.zst")") / $(mib "$(size "$work/z.hxz")") |"
