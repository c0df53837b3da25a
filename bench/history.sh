#!/usr/bin/env bash
# Versions: what each tool adds to its store for v2 after storing v1, and the time it takes.
#   bench/history.sh [DIR]   (DIR holds v1.img and v2.img from bench/os_image.sh)
# Needs restic, borgbackup and casync (apt). Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/hexz-bench}
v1=$dir/v1.img v2=$dir/v2.img
[ -s "$v1" ] && [ -s "$v2" ] || { echo "bench: run bench/os_image.sh first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
hexz=(deno run -q --allow-all cli.ts)
du_b() { du -sb "$1" | cut -f1; }
. bench/_lib.sh
cat "$v1" "$v2" >/dev/null

# hexz: v1 full, v2 thin against v1, both with CDC so inserted bytes do not shift every block.
h1=$(timed "${hexz[@]}" pack "$work/v1.hxz" --disk "$v1" --compression zstd --cdc -q)
h2=$(timed "${hexz[@]}" pack "$work/v2.hxz" --disk "$v2" --compression zstd --base "$work/v1.hxz" -q)
hs1=$(stat -c %s "$work/v1.hxz") hs2=$(stat -c %s "$work/v2.hxz")

export RESTIC_PASSWORD=bench RESTIC_REPOSITORY=$work/restic
restic init -q >/dev/null
r1=$(timed restic backup -q "$v1")
rs1=$(du_b "$work/restic")
r2=$(timed restic backup -q "$v2")
rs2=$(( $(du_b "$work/restic") - rs1 ))

export BORG_REPO=$work/borg BORG_PASSPHRASE="" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
borg init -e none >/dev/null 2>&1
b1=$(timed borg create --compression lz4 ::v1 "$v1")
bs1=$(du_b "$work/borg")
b2=$(timed borg create --compression lz4 ::v2 "$v2")
bs2=$(( $(du_b "$work/borg") - bs1 ))

mkdir -p "$work/casync"
c1=$(timed casync make --store="$work/casync/store" "$work/casync/v1.caibx" "$v1")
cs1=$(du_b "$work/casync")
c2=$(timed casync make --store="$work/casync/store" "$work/casync/v2.caibx" "$v2")
cs2=$(( $(du_b "$work/casync") - cs1 ))

echo "v1: $v1, v2: $v2 ($(mib "$(stat -c %s "$v2")") MiB each), $(date -u +%FT%TZ)"
echo
echo "| tool | v1 s | v1 stored MiB | v2 s | v2 adds MiB |"
echo "|---|---:|---:|---:|---:|"
echo "| hexz (zstd, CDC, v2 --base v1) | $h1 | $(mib "$hs1") | $h2 | $(mib "$hs2") |"
echo "| restic | $r1 | $(mib "$rs1") | $r2 | $(mib "$rs2") |"
echo "| borg (lz4) | $b1 | $(mib "$bs1") | $b2 | $(mib "$bs2") |"
echo "| casync | $c1 | $(mib "$cs1") | $c2 | $(mib "$cs2") |"
