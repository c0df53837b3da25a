#!/usr/bin/env bash
# End to end against the native tools on the same file, in one run (page cache warm, best of 3):
#   bench/compare.sh [IMAGE]      (default /tmp/hexz-bench/v1.img from bench/os_image.sh)
# Prints a markdown table of seconds, output sizes and hexz/native time ratios (< 1 = faster),
# then the headline comparisons again as ROUNDS interleaved rounds (default 10; 0 skips them):
# on a host whose speed drifts, medians of interleaved rounds compare better than best of 3.
set -euo pipefail
cd "$(dirname "$0")/.."
img=${1:-/tmp/hexz-bench/v1.img}
[ -s "$img" ] || { echo "bench: $img missing: run bench/os_image.sh" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
hexz=(deno run -q --allow-all cli.ts)
cat "$img" >/dev/null

. bench/_lib.sh

t_lz4=$(best lz4 -1 -f -q "$img" "$work/n.lz4")
t_hl=$(best "${hexz[@]}" pack "$work/l.hxz" --disk "$img" --compression lz4 -f -q)
t_zstd=$(best zstd -3 -T1 -f -q "$img" -o "$work/n.zst")
t_hz=$(best "${hexz[@]}" pack "$work/z.hxz" --disk "$img" --compression zstd -f -q)
t_hz1=$(best "${hexz[@]}" pack "$work/z1.hxz" --disk "$img" --compression zstd --workers 1 -f -q)
t_hl1=$(best "${hexz[@]}" pack "$work/l1.hxz" --disk "$img" --compression lz4 --workers 1 -f -q)
t_unz=$(best zstd -d -f -q "$work/n.zst" -o "$work/n.raw")
# extract fsyncs its output before renaming it into place; give zstd the same durability.
t_unzs=$(best sh -c "zstd -d -f -q '$work/n.zst' -o '$work/n.raw' && sync '$work/n.raw'")
t_ex=$(best "${hexz[@]}" extract "$work/z.hxz" "$work/x.raw" --force -q)
cmp "$work/x.raw" "$img"
t_unl=$(best lz4 -d -f -q "$work/n.lz4" "$work/n.raw")
t_tz=$(best zstd -t -q "$work/n.zst")
t_ck=$(best "${hexz[@]}" check "$work/z.hxz" -q)
t_exl=$(best "${hexz[@]}" extract "$work/l.hxz" "$work/x.raw" --force -q)
cmp "$work/x.raw" "$img"
# The header differs (UUID, creation time, hence the root hash); everything after it must not.
cmp -s <(tail -c +4097 "$work/z.hxz") <(tail -c +4097 "$work/z1.hxz") && same=yes || same=NO
cmp -s <(tail -c +4097 "$work/l.hxz") <(tail -c +4097 "$work/l1.hxz") && same_l=yes || same_l=NO

echo "input: $img, $(mib "$(size "$img")") MiB, $(nproc) cores, $(date -u +%FT%TZ)"
echo
echo "| job | native | s | hexz | s | hexz/native time | sizes (MiB) native / hexz |"
echo "|---|---|---:|---|---:|---:|---|"
echo "| compress lz4 | lz4 -1 | $t_lz4 | pack --compression lz4 | $t_hl | $(ratio "$t_hl" "$t_lz4") | $(mib "$(size "$work/n.lz4")") / $(mib "$(size "$work/l.hxz")") |"
echo "| compress zstd | zstd -3 -T1 | $t_zstd | pack --compression zstd | $t_hz | $(ratio "$t_hz" "$t_zstd") | $(mib "$(size "$work/n.zst")") / $(mib "$(size "$work/z.hxz")") |"
echo "| decompress zstd | zstd -d | $t_unz | extract (zstd archive) | $t_ex | $(ratio "$t_ex" "$t_unz") | |"
echo "| decompress zstd, durable | zstd -d && sync FILE | $t_unzs | extract (zstd archive; fsyncs) | $t_ex | $(ratio "$t_ex" "$t_unzs") | |"
echo "| verify | zstd -t | $t_tz | check (zstd archive; BLAKE3 of every block) | $t_ck | $(ratio "$t_ck" "$t_tz") | |"
echo "| decompress lz4 | lz4 -d | $t_unl | extract (lz4 archive, the default) | $t_exl | $(ratio "$t_exl" "$t_unl") | |"
echo "| decompress, default archive | zstd -d | $t_unz | extract (lz4 archive, the default) | $t_exl | $(ratio "$t_exl" "$t_unz") | |"
echo
echo "| parallel pack | 1 worker s | $(nproc) workers s | speed-up | identical after the header |"
echo "|---|---:|---:|---:|---|"
echo "| zstd | $t_hz1 | $t_hz | $(ratio "$t_hz1" "$t_hz")x | $same |"
echo "| lz4 | $t_hl1 | $t_hl | $(ratio "$t_hl1" "$t_hl")x | $same_l |"

rounds=${ROUNDS:-10}
[ "$rounds" -gt 0 ] || exit 0
il=(deno run -q -A bench/interleave.ts "$rounds")
h="${hexz[*]}"
echo
echo "Interleaved, $rounds rounds: parallel pack (the first line is the 1-thread pack)"
echo
"${il[@]}" "$h pack $work/l1.hxz --disk $img --compression lz4 --workers 1 -f -q" \
  "$h pack $work/l.hxz --disk $img --compression lz4 -f -q" "lz4 -1 -f -q $img $work/n.lz4"
echo
"${il[@]}" "$h pack $work/z1.hxz --disk $img --compression zstd --workers 1 -f -q" \
  "$h pack $work/z.hxz --disk $img --compression zstd -f -q" \
  "zstd -3 -T1 -f -q $img -o $work/n.zst"
echo
echo "Interleaved, $rounds rounds: extract against zstd -d (the first line)"
echo
"${il[@]}" "zstd -d -f -q $work/n.zst -o $work/n.raw" \
  "$h extract $work/z.hxz $work/x.raw --force -q" \
  "$h extract $work/l.hxz $work/x.raw --force -q" "lz4 -d -f -q $work/n.lz4 $work/n.raw"
