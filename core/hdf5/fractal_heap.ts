/**
 * Fractal heaps ("FRHP"): where a group in dense storage keeps its link messages, and an
 * object its attributes. This reader resolves managed objects in direct blocks ("FHDB") found
 * from the root through indirect blocks ("FHIB", nested as deep as the heap grows; each met
 * once), and tiny objects (stored in the heap ID itself). Huge objects and filtered heaps are
 * refused.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { bad, UNDEF } from "./cursor.ts";
import { lookup3 } from "./checksum.ts";
import type { H5File } from "./h5file.ts";

export interface FractalHeap {
  /** The object a heap ID names. */
  get(id: Uint8Array): Promise<Uint8Array>;
}

const isPow2 = (n: number) => n > 0 && 2 ** bitsOf(n) === n;

function bitsOf(n: number): number {
  let b = 0;
  while (2 ** (b + 1) <= n) b++;
  return b;
}

export async function openFractalHeap(f: H5File, at: number, what: string): Promise<FractalHeap> {
  const o = f.sb.offsetSize, l = f.sb.lengthSize;
  const w = `${what}: fractal heap`;
  const h = await f.cursor(at, 26 + 12 * l + 3 * o, w);
  h.signature("FRHP");
  if (h.u8() !== 0) bad(w, "unknown version");
  h.u16(); // heap ID length
  const filterLength = h.u16();
  const flags = h.u8();
  const maxManaged = h.u32();
  h.length(); // next huge object ID
  h.address(); // huge object B-tree
  h.length(); // free space in managed blocks
  h.address(); // free-space manager
  h.length(); // managed space
  h.length(); // allocated managed space
  h.length(); // direct block allocation iterator
  h.length(); // managed objects
  h.length(); // huge object size
  h.length(); // huge objects
  h.length(); // tiny object size
  h.length(); // tiny objects
  const width = h.u16();
  const startSize = h.length("starting block size");
  const maxDirect = h.length("maximum direct block size");
  const maxHeapBits = h.u16();
  h.u16(); // starting rows of the root indirect block
  const root = f.abs(h.address("root block"));
  const rows = h.u16();
  if (filterLength) {
    throw new HexzError("unsupported", `${w}: filtered fractal heaps are not supported`);
  }
  if (
    width < 1 || width > 65536 || startSize < 16 || maxDirect < startSize ||
    maxDirect > 1 << 30 || maxHeapBits < 8 || maxHeapBits > 64 || rows > 64
  ) {
    bad(w, "implausible doubling table");
  }
  const offsetSize = Math.ceil(maxHeapBits / 8);
  const lengthSize = Math.min(
    Math.ceil(bitsOf(maxDirect) / 8),
    Math.floor(bitsOf(maxManaged) / 8) + 1,
  );
  const checked = (flags & 2) !== 0;
  /** Direct blocks: heap offset, size, address. */
  const blocks: [number, number, number][] = [];
  if (!isPow2(width) || !isPow2(startSize) || !isPow2(maxDirect)) {
    bad(w, "doubling table sizes are not powers of 2");
  }
  /** Bytes of each block in row `r` of an indirect block. */
  const rowSize = (r: number) => r < 2 ? startSize : startSize * 2 ** (r - 1);
  /** The rows whose blocks are direct (larger ones are indirect blocks themselves). */
  const directRows = bitsOf(maxDirect) - bitsOf(startSize) + 2;
  const firstRowBits = bitsOf(startSize) + bitsOf(width);
  const seen = new Set<number>();
  /** Collects the direct blocks under the indirect block at `addr`, which starts at heap
   * offset `start` and has `nrows` rows. */
  const indirect = async (addr: number, start: number, nrows: number): Promise<void> => {
    const iw = `${w}: indirect block at ${addr}`;
    if (seen.has(addr)) bad(iw, "met twice");
    seen.add(addr);
    if (nrows < 1 || nrows > 64) bad(iw, `${nrows} rows`);
    const c = await f.cursor(addr, 5 + o + offsetSize + nrows * width * o + 4, iw);
    c.signature("FHIB");
    if (c.u8() !== 0) bad(iw, "unknown version");
    if (f.abs(c.address()) !== at) bad(iw, "does not point back at its heap");
    if (c.uint(offsetSize, "block offset") !== start) bad(iw, "block offset is not its place");
    const children: [number, number, number][] = [];
    let off = start;
    for (let r = 0; r < nrows; r++) {
      for (let col = 0; col < width; col++) {
        const a = f.abs(c.address());
        if (a !== UNDEF) {
          if (r < directRows) blocks.push([off, rowSize(r), a]);
          else children.push([a, off, bitsOf(rowSize(r)) - firstRowBits + 1]);
        }
        off += rowSize(r);
      }
    }
    const end = c.pos;
    if (lookup3(c.bytes.subarray(0, end)) !== c.u32()) bad(iw, "checksum mismatch");
    for (const [a, s, n] of children) await indirect(a, s, n);
  };
  if (root !== UNDEF) {
    if (rows === 0) blocks.push([0, startSize, root]);
    else await indirect(root, 0, rows);
  }
  blocks.sort((a, b) => a[0] - b[0]);
  const cache = new Map<number, Uint8Array>();
  return {
    async get(id) {
      const c = f.over(id, `${w}: heap ID`);
      const b0 = c.u8();
      if (b0 >> 6 !== 0) bad(c.what, `version ${b0 >> 6}`);
      const type = (b0 >> 4) & 3;
      if (type === 2) return c.take((b0 & 0x0f) + 1);
      if (type !== 0) throw new HexzError("unsupported", `${w}: huge objects are not supported`);
      const offset = c.uint(offsetSize, "object offset");
      const length = c.uint(lengthSize, "object length");
      // The last block starting at or before the offset (blocks are sorted and disjoint).
      let lo = 0, hi = blocks.length - 1, k = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (blocks[mid][0] <= offset) (k = mid), (lo = mid + 1);
        else hi = mid - 1;
      }
      const blk = k >= 0 && offset < blocks[k][0] + blocks[k][1] ? blocks[k] : undefined;
      if (!blk) bad(w, `object at heap offset ${offset} is in no direct block`);
      const [start, size, addr] = blk;
      let data = cache.get(addr);
      if (!data) {
        const bw = `${w}: direct block at ${addr}`;
        const d = await f.cursor(addr, size, bw);
        d.signature("FHDB");
        if (d.u8() !== 0) bad(bw, "unknown version");
        if (f.abs(d.address()) !== at) bad(bw, "does not point back at its heap");
        d.skip(offsetSize);
        if (checked) {
          // Over the whole block, with the checksum's own four bytes taken as zeros.
          const at = d.pos;
          const stored = d.u32();
          const copy = d.bytes.slice();
          copy.fill(0, at, at + 4);
          if (lookup3(copy) !== stored) bad(bw, "checksum mismatch");
        }
        data = d.bytes;
        cache.set(addr, data);
      }
      const pos = offset - start;
      if (pos + length > size) bad(w, `object of ${length} bytes at ${offset} runs past its block`);
      return data.subarray(pos, pos + length);
    },
  };
}
