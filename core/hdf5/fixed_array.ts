/**
 * The fixed array chunk index ("FAHD" header, "FADB" data block, optionally in pages) of
 * layout version 4: one entry per chunk of the dataset's chunk grid, in row-major order; an
 * undefined address is a chunk never written. Every block's lookup3 checksum is checked.
 *
 * @module
 */
import { lookup3 } from "./checksum.ts";
import { bad, type Cursor, UNDEF } from "./cursor.ts";
import type { H5File } from "./h5file.ts";

export interface ArrayEntry {
  /** Absolute, or UNDEF. */
  address: number;
  /** Stored bytes (filtered chunks), else undefined. */
  size?: number;
  filterMask: number;
}

function checked(c: Cursor, start: number, what: string) {
  const end = c.pos;
  const stored = c.u32();
  if (lookup3(c.bytes.subarray(start, end)) !== stored) bad(what, "checksum mismatch");
}

/** The entries of the fixed array at `at` (absolute); `count` is the dataset's chunk count. */
export async function fixedArray(
  f: H5File,
  at: number,
  count: number,
  what: string,
): Promise<ArrayEntry[]> {
  const o = f.sb.offsetSize, l = f.sb.lengthSize;
  const w = `${what}: fixed array header`;
  const h = await f.cursor(at, 8 + l + o + 4, w);
  h.signature("FAHD");
  if (h.u8() !== 0) bad(w, "unknown version");
  const client = h.u8();
  const entrySize = h.u8();
  const pageBits = h.u8();
  const n = h.length("element count");
  const block = f.abs(h.address("data block address"));
  checked(h, 0, w);
  if (n !== count) bad(w, `${n} entries for ${count} chunks`);
  if (pageBits > 32) bad(w, `page bits ${pageBits}`);
  const filtered = client === 1;
  if (client > 1) bad(w, `client ${client}`);
  const sizeWidth = filtered ? entrySize - o - 4 : 0;
  if (filtered ? sizeWidth < 1 || sizeWidth > 8 : entrySize !== o) {
    bad(w, `entry size ${entrySize}`);
  }
  const bw = `${what}: fixed array data block`;
  const pageSize = 2 ** pageBits;
  const paged = n > pageSize;
  const pages = paged ? Math.ceil(n / pageSize) : 0;
  const prefix = 6 + o + (paged ? Math.ceil(pages / 8) : 0);
  const total = prefix + 4 + (paged ? pages * 4 : 0) + n * entrySize;
  const c = await f.cursor(block, total, bw);
  c.signature("FADB");
  if (c.u8() !== 0) bad(bw, "unknown version");
  if (c.u8() !== client) bad(bw, "client differs from its header's");
  if (f.abs(c.address()) !== at) bad(bw, "does not point back at its header");
  const bitmap = paged ? c.take(Math.ceil(pages / 8)) : null;
  const out: ArrayEntry[] = [];
  const entry = (c: Cursor): ArrayEntry => {
    const address = f.abs(c.address());
    if (!filtered) return { address, filterMask: 0 };
    const size = c.uint(sizeWidth, "chunk size");
    return { address, size, filterMask: c.u32() };
  };
  if (!paged) {
    for (let i = 0; i < n; i++) out.push(entry(c));
    checked(c, 0, bw);
    return out;
  }
  checked(c, 0, bw);
  for (let p = 0; p < pages; p++) {
    const start = c.pos;
    const m = Math.min(pageSize, n - p * pageSize);
    const init = (bitmap![p >> 3] >> (7 - (p & 7))) & 1;
    if (!init) {
      c.skip(m * entrySize + 4);
      for (let i = 0; i < m; i++) out.push({ address: UNDEF, filterMask: 0 });
      continue;
    }
    for (let i = 0; i < m; i++) out.push(entry(c));
    checked(c, start, `${bw} page ${p}`);
  }
  return out;
}
