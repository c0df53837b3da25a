/**
 * Sizes as users write and read them, in the conventions of zstd and qemu-img: `64K`, `1M`,
 * `2G` (powers of 1024; `KiB`/`MiB`/`GiB` accepted too) in, `1 GiB`, `97.5 MiB` out.
 *
 * @module
 */
import { HexzError } from "../core/errors.ts";

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Parses `65536`, `64K`, `64KiB`, `1.5M`... into bytes; `what` names the flag in errors. */
export function parseSize(s: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(s);
  const mult = m ? UNITS[m[2].toLowerCase()] : undefined;
  const v = m && mult ? Number(m[1]) * mult : NaN;
  if (!Number.isSafeInteger(v)) {
    throw new HexzError("usage", `${what}: '${s}' is not a size (examples: 65536, 64K, 1M, 2G)`);
  }
  return v;
}

/** Parses a non-negative integer flag value. */
export function parseCount(s: string, what: string): number {
  if (!/^\d+$/.test(s.trim()) || !Number.isSafeInteger(Number(s))) {
    throw new HexzError("usage", `${what}: '${s}' is not a whole number`);
  }
  return Number(s);
}

/** `1 GiB`, `97.5 MiB`, `512 B`: three significant digits, binary units. */
export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const s = v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${s.replace(/\.0+$|(\.\d*?)0+$/, "$1")} ${units[i]}`;
}

/** `3.21x`, or `-` when undefined (null: a ratio of nothing). */
export function formatRatio(r: number | null): string {
  return r !== null && Number.isFinite(r) ? `${r.toFixed(2)}x` : "-";
}

/** Parses a (possibly negative) integer flag value. */
export function parseInteger(s: string, what: string): number {
  if (!/^\s*-?\d+\s*$/.test(s) || !Number.isSafeInteger(Number(s))) {
    throw new HexzError("usage", `${what}: '${s}' is not a whole number`);
  }
  return Number(s);
}

/** `parseInteger` of an option that may be absent (then undefined). */
export function optionalInteger(s: string | undefined, what: string): number | undefined {
  return s === undefined ? undefined : parseInteger(s, what);
}

/** Parses a fixed block size: a power of two from 1K to 16M, as the flag is told if not. */
export function parseBlockSize(s: string, what: string): number {
  const n = parseSize(s, what);
  if (n < 1024 || n > 16 * 1024 * 1024 || (n & (n - 1)) !== 0) {
    throw new HexzError("usage", `${what} ${s}: must be a power of two between 1K and 16M`);
  }
  return n;
}

/** `1 block`, `2 blocks`: a count with its noun in the right number. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
