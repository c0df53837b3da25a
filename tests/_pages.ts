/**
 * Byte surgery on unencrypted archives for hostile-input tests: store every index page plain
 * and find an entry to change (then recompute the checksums above it with tests/_rehash.ts, so
 * that only the reader's own checks stand between the change and the data).
 */
import { lz4DecompressInto } from "../core/codec/lz4.ts";
import { assertEquals } from "./_assert.ts";
import { u32, u64 } from "./_rehash.ts";

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.length);

/** Master record `i` of archive `f`. */
function record(f: Uint8Array, i: number): Uint8Array {
  const at = u64(f, 80) + 16 + 72 * i;
  return f.subarray(at, at + 72);
}

/**
 * A copy of `f` whose LZ4 index pages are stored plain, appended after the archive's end
 * (archiveEnd moves; the master points at them). Checksums are left for `rehash`.
 */
export function plainPages(f: Uint8Array): Uint8Array {
  const add: Uint8Array[] = [];
  let end = u64(f, 48);
  const fixes: [number, number, number][] = [];
  for (let i = 0; i < u32(f, u64(f, 80) + 8); i++) {
    const r = record(f, i);
    if (r[1] !== 1) continue;
    const count = u32(r, 4);
    const stored = f.subarray(u64(r, 24), u64(r, 24) + u32(r, 32));
    const plain = new Uint8Array(32 + 56 * count + 32);
    plain.set(stored.subarray(0, 32));
    lz4DecompressInto(stored.subarray(32, stored.length - 32), plain.subarray(32, 32 + 56 * count));
    add.push(plain);
    fixes.push([i, end, plain.length]);
    end += plain.length;
  }
  const out = new Uint8Array(end);
  out.set(f.subarray(0, u64(f, 48)));
  let at = u64(f, 48);
  for (const p of add) {
    out.set(p, at);
    at += p.length;
  }
  for (const [i, offset, length] of fixes) {
    const r = record(out, i);
    r[1] = 0;
    dv(r).setBigUint64(24, BigInt(offset), true);
    dv(r).setUint32(32, length, true);
  }
  dv(out).setBigUint64(48, BigInt(end), true);
  return out;
}

/** The file offset of entry `e` of the first page, whose page must be stored plain. */
export function entryAt(f: Uint8Array, e: number): number {
  const r = record(f, 0);
  assertEquals(r[1], 0, "a plain page");
  return u64(r, 24) + 32 + 56 * e;
}
