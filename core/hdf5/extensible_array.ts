/**
 * The extensible array chunk index (layout version 4, a dataset with one unlimited
 * dimension): a header ("EAHD"), an index block ("EAIB") holding the first entries and the
 * addresses of the first data blocks ("EADB") and of secondary blocks ("EASB"), which point
 * at the later data blocks; data blocks past a size limit are split into pages. Block sizes
 * follow from the header's parameters as in HDF5's H5EA__hdr_init. Every block's lookup3
 * checksum is checked.
 *
 * @module
 */
import { lookup3 } from "./checksum.ts";
import { bad, type Cursor, UNDEF } from "./cursor.ts";
import { type H5File, MAX_METADATA } from "./h5file.ts";
import type { ArrayEntry } from "./fixed_array.ts";

function checked(c: Cursor, start: number, what: string) {
  const end = c.pos;
  if (lookup3(c.bytes.subarray(start, end)) !== c.u32()) bad(what, "checksum mismatch");
}

const log2 = (n: number) => Math.round(Math.log2(n));
const isPow2 = (n: number) => n > 0 && 2 ** log2(n) === n;

/** The defined entries of the extensible array at `at` (absolute), by chunk index. */
export async function extensibleArray(
  f: H5File,
  at: number,
  what: string,
): Promise<Map<number, ArrayEntry>> {
  const o = f.sb.offsetSize, l = f.sb.lengthSize;
  const w = `${what}: extensible array header`;
  const h = await f.cursor(at, 12 + 6 * l + o + 4, w);
  h.signature("EAHD");
  if (h.u8() !== 0) bad(w, "unknown version");
  const client = h.u8(), es = h.u8(), maxBits = h.u8(), iblkElmts = h.u8();
  const dblkMin = h.u8(), sblkMinPtrs = h.u8(), pageBits = h.u8();
  for (let i = 0; i < 4; i++) h.length();
  const maxIndex = h.length("max index set");
  h.length(); // elements realized
  const iblock = f.abs(h.address("index block address"));
  checked(h, 0, w);
  if (client > 1) bad(w, `client ${client}`);
  const filtered = client === 1;
  const sizeWidth = filtered ? es - o - 4 : 0;
  if (filtered ? sizeWidth < 1 || sizeWidth > 8 : es !== o) bad(w, `entry size ${es}`);
  if (
    !isPow2(dblkMin) || !isPow2(sblkMinPtrs) || maxBits > 64 || maxBits < log2(dblkMin) ||
    pageBits > 32
  ) {
    bad(w, "implausible parameters");
  }
  const out = new Map<number, ArrayEntry>();
  if (iblock === UNDEF || maxIndex === 0) return out;
  // The super blocks: how many data blocks each has, of how many elements, from which index.
  const nsblks = 1 + maxBits - log2(dblkMin);
  const sblk: { ndblks: number; nelmts: number; start: number }[] = [];
  for (let u = 0, start = 0; u < nsblks; u++) {
    const ndblks = 2 ** Math.floor(u / 2), nelmts = 2 ** Math.floor((u + 1) / 2) * dblkMin;
    sblk.push({ ndblks, nelmts, start });
    start += ndblks * nelmts;
  }
  const inIblock = 2 * log2(sblkMinPtrs);
  const ndblkAddrs = 2 * (sblkMinPtrs - 1);
  const nsblkAddrs = Math.max(0, nsblks - inIblock);
  const offBytes = Math.ceil(maxBits / 8);
  const pageElmts = 2 ** pageBits;
  const entry = (c: Cursor): ArrayEntry => {
    const address = f.abs(c.address());
    if (!filtered) return { address, filterMask: 0 };
    const size = c.uint(sizeWidth, "chunk size");
    return { address, size, filterMask: c.u32() };
  };
  const put = (i: number, e: ArrayEntry) => {
    if (e.address !== UNDEF && i < maxIndex) out.set(i, e);
  };

  const iw = `${what}: extensible array index block`;
  const ib = await f.cursor(iblock, 6 + o + iblkElmts * es + (ndblkAddrs + nsblkAddrs) * o + 4, iw);
  ib.signature("EAIB");
  if (ib.u8() !== 0) bad(iw, "unknown version");
  if (ib.u8() !== client) bad(iw, "client differs from its header's");
  if (f.abs(ib.address()) !== at) bad(iw, "does not point back at its header");
  for (let i = 0; i < iblkElmts; i++) put(i, entry(ib));
  const dblks: number[] = [];
  for (let i = 0; i < ndblkAddrs; i++) dblks.push(f.abs(ib.address()));
  const sblks: number[] = [];
  for (let i = 0; i < nsblkAddrs; i++) sblks.push(f.abs(ib.address()));
  checked(ib, 0, iw);

  const seen = new Set<number>();
  /** Reads the data block of `n` elements at `addr` holding indexes from `first`; `pages`
   * says which of its pages hold entries (null: not paged). */
  const dataBlock = async (addr: number, n: number, first: number, pages: boolean[] | null) => {
    const bw = `${what}: extensible array data block at ${addr}`;
    if (seen.has(addr)) bad(bw, "met twice");
    seen.add(addr);
    const head = 6 + o + offBytes;
    const c = await f.cursor(addr, head + (pages ? 4 + pages.length * 4 : 4) + n * es, bw);
    c.signature("EADB");
    if (c.u8() !== 0) bad(bw, "unknown version");
    if (c.u8() !== client) bad(bw, "client differs from its header's");
    if (f.abs(c.address()) !== at) bad(bw, "does not point back at its header");
    c.skip(offBytes);
    if (!pages) {
      for (let i = 0; i < n; i++) put(first + i, entry(c));
      checked(c, 0, bw);
      return;
    }
    checked(c, 0, bw);
    for (let p = 0; p < pages.length; p++) {
      const start = c.pos;
      if (!pages[p]) {
        c.skip(pageElmts * es + 4);
        continue;
      }
      for (let i = 0; i < pageElmts; i++) put(first + p * pageElmts + i, entry(c));
      checked(c, start, `${bw} page ${p}`);
    }
  };

  // Data blocks straight from the index block: super blocks 0 .. inIblock-1.
  let d = 0;
  for (let u = 0; u < Math.min(inIblock, nsblks); u++) {
    for (let k = 0; k < sblk[u].ndblks; k++, d++) {
      const first = iblkElmts + sblk[u].start + k * sblk[u].nelmts;
      if (d >= dblks.length || dblks[d] === UNDEF || first >= maxIndex) continue;
      if (sblk[u].nelmts > pageElmts) bad(iw, "paged data block in the index block");
      await dataBlock(dblks[d], sblk[u].nelmts, first, null);
    }
  }
  // The rest through secondary blocks.
  for (let s = 0; s < sblks.length; s++) {
    const u = inIblock + s;
    const first0 = iblkElmts + sblk[u].start;
    if (sblks[s] === UNDEF || first0 >= maxIndex) continue;
    const sw = `${what}: extensible array secondary block at ${sblks[s]}`;
    const { ndblks, nelmts } = sblk[u];
    if (nelmts * es > MAX_METADATA) bad(sw, `data blocks of ${nelmts} entries`);
    const npages = nelmts > pageElmts ? nelmts / pageElmts : 0;
    // Each data block has ceil(npages / 8) bytes of bitmap; its bits are read as one run
    // (block k's page p is bit k * npages + p), as HDF5's H5EA__lookup_elmt does.
    const bitmap = ndblks * Math.ceil(npages / 8);
    const c = await f.cursor(sblks[s], 6 + o + offBytes + bitmap + ndblks * o + 4, sw);
    c.signature("EASB");
    if (c.u8() !== 0) bad(sw, "unknown version");
    if (c.u8() !== client) bad(sw, "client differs from its header's");
    if (f.abs(c.address()) !== at) bad(sw, "does not point back at its header");
    c.skip(offBytes);
    const bits = c.take(bitmap);
    const addrs: number[] = [];
    for (let k = 0; k < ndblks; k++) addrs.push(f.abs(c.address()));
    checked(c, 0, sw);
    for (let k = 0; k < ndblks; k++) {
      const first = first0 + k * nelmts;
      if (addrs[k] === UNDEF || first >= maxIndex) continue;
      const pages = npages
        ? Array.from({ length: npages }, (_, p) => {
          const b = k * npages + p;
          return ((bits[b >> 3] >> (7 - (b & 7))) & 1) === 1;
        })
        : null;
      await dataBlock(addrs[k], nelmts, first, pages);
    }
  }
  return out;
}
