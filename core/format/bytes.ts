/**
 * Little-endian helpers shared by the record codecs. u64 values are JavaScript numbers and
 * must be safe integers (< 2^53): larger values on disk are rejected as corrupt.
 *
 * @module
 */
import { ensure } from "../errors.ts";

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function getU64(dv: DataView, off: number, what: string): number {
  const lo = dv.getUint32(off, true);
  const hi = dv.getUint32(off + 4, true);
  ensure(hi < 0x200000, `${what} is too large (${hi * 2 ** 32 + lo})`);
  return hi * 2 ** 32 + lo;
}

export function setU64(dv: DataView, off: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`bad u64 ${value}`);
  dv.setUint32(off, value % 2 ** 32, true);
  dv.setUint32(off + 4, Math.floor(value / 2 ** 32), true);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The parts, one after another, in a new buffer. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function isZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** A compact Map key for a hash (one UTF-16 unit per byte). */
export function bytesKey(h: Uint8Array): string {
  return String.fromCharCode.apply(null, h as unknown as number[]);
}

/** A size as errors name it: `3 KiB`, `32 MiB` when exact, else `1000 B`. */
export function exactSize(n: number): string {
  for (const [unit, f] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (n >= f && n % f === 0) return `${n / f} ${unit}`;
  }
  return `${n} B`;
}
