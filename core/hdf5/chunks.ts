/**
 * A chunked dataset's chunks, from whichever index it has (version 1 B-tree, single chunk,
 * implicit, fixed array, extensible array, version 2 B-tree), as one list of records, each
 * checked: on the chunk grid, stored inside the file, and met once.
 *
 * @module
 */
import { bad, UNDEF } from "./cursor.ts";
import type { H5File } from "./h5file.ts";
import { type ChunkRecord, chunkRecords } from "./btree.ts";
import { fixedArray } from "./fixed_array.ts";
import { extensibleArray } from "./extensible_array.ts";
import { btree2Records } from "./btree2.ts";
import type { Layout } from "./layout.ts";

export type { ChunkRecord };

/** The chunk grid: how many chunks along each dimension. */
export function gridOf(shape: number[], chunk: number[]): number[] {
  return shape.map((d, i) => Math.ceil(d / chunk[i]));
}

/**
 * The chunk offsets of linear chunk index `i` in the arrays that index chunks by number
 * (implicit, fixed and extensible arrays): row-major over the chunk grid of the maximum
 * dimensions, with an unlimited dimension (at most one; HDF5's "swizzle") moved first.
 */
function linear(maxShape: number[], chunk: number[], what: string): (i: number) => number[] {
  const rank = chunk.length;
  const unlimited = maxShape.flatMap((m, d) => m === -1 ? [d] : []);
  if (unlimited.length > 1) bad(what, "a chunk array with more than one unlimited dimension");
  const order = [...unlimited, ...chunk.keys().filter((d) => !unlimited.includes(d))];
  const counts = maxShape.map((m, d) => Math.ceil(m / chunk[d]));
  return (i) => {
    const out = new Array<number>(rank);
    for (let k = rank - 1; k >= 0; k--) {
      const d = order[k];
      if (k === 0) out[d] = i * chunk[d];
      else {
        out[d] = (i % counts[d]) * chunk[d];
        i = Math.floor(i / counts[d]);
      }
    }
    return out;
  };
}

/** The records of the chunks that exist within `shape` (a missing chunk reads as the fill
 * value; chunks left beyond a dataset that shrank are ignored, as HDF5 does). */
export async function listChunks(
  f: H5File,
  layout: Extract<Layout, { class: "chunked" }>,
  shape: number[],
  maxShape: number[],
  chunkBytes: number,
  what: string,
): Promise<ChunkRecord[]> {
  const { index, chunk } = layout;
  const at = f.abs(index.address);
  if (at === UNDEF || shape.some((d) => d === 0)) return [];
  // Only the arrays index chunks by number (a B-tree's records hold their offsets).
  let lin: ((i: number) => number[]) | undefined;
  const offsetsOf = (i: number) => (lin ??= linear(maxShape, chunk, what))(i);
  const maxCount = maxShape.includes(-1)
    ? Infinity
    : gridOf(maxShape, chunk).reduce((a, b) => a * b, 1);
  let records: ChunkRecord[] = [];
  switch (index.type) {
    case "btree1":
      records = await chunkRecords(f, at, shape.length, what);
      break;
    case "single":
      records = [{
        offsets: shape.map(() => 0),
        size: index.filteredSize ?? chunkBytes,
        filterMask: index.filterMask ?? 0,
        address: at,
      }];
      break;
    case "implicit":
      if (maxCount > 1 << 24) bad(what, `an implicit index of ${maxCount} chunks`);
      for (let i = 0; i < maxCount; i++) {
        records.push({
          offsets: offsetsOf(i),
          size: chunkBytes,
          filterMask: 0,
          address: at + i * chunkBytes,
        });
      }
      break;
    case "fixed-array": {
      const entries = await fixedArray(f, at, maxCount, what);
      entries.forEach((e, i) => {
        if (e.address !== UNDEF) {
          records.push({
            offsets: offsetsOf(i),
            size: e.size ?? chunkBytes,
            filterMask: e.filterMask,
            address: e.address,
          });
        }
      });
      break;
    }
    case "extensible-array":
      for (const [i, e] of await extensibleArray(f, at, what)) {
        records.push({
          offsets: offsetsOf(i),
          size: e.size ?? chunkBytes,
          filterMask: e.filterMask,
          address: e.address,
        });
      }
      break;
    case "btree2":
      records = await btree2Chunks(f, at, chunk, chunkBytes, what);
      break;
  }
  const seen = new Set<string>();
  const out: ChunkRecord[] = [];
  for (const r of records) {
    const w = `${what}: chunk at [${r.offsets.join(",")}]`;
    if (r.offsets.some((o, d) => o % chunk[d] !== 0)) bad(w, "is not on the dataset's chunk grid");
    if (r.offsets.some((o, d) => o >= shape[d])) continue;
    const key = r.offsets.join(",");
    if (seen.has(key)) bad(w, "is indexed twice");
    seen.add(key);
    if (r.address === UNDEF || r.address + r.size > f.src.size) {
      bad(w, `${r.size} bytes at ${r.address} lie outside the file (${f.src.size} bytes)`);
    }
    out.push(r);
  }
  return out;
}

/** The chunks of a version 2 B-tree index (record type 10, or 11 with filters). */
async function btree2Chunks(
  f: H5File,
  at: number,
  chunk: number[],
  chunkBytes: number,
  what: string,
): Promise<ChunkRecord[]> {
  const o = f.sb.offsetSize;
  const out: ChunkRecord[] = [];
  const { type, records } = await btree2Records(f, at, [10, 11], `${what}: chunk index`);
  for (const rec of records) {
    const c = f.over(rec, `${what}: chunk record`);
    const address = f.abs(c.address("chunk address"));
    let size = chunkBytes, filterMask = 0;
    if (type === 11) {
      const width = rec.length - o - 4 - 8 * chunk.length;
      if (width < 1 || width > 8) bad(c.what, `record of ${rec.length} bytes`);
      size = c.uint(width, "chunk size");
      filterMask = c.u32();
    }
    const offsets: number[] = [];
    for (let d = 0; d < chunk.length; d++) {
      offsets.push(c.uint(8, "a scaled chunk offset") * chunk[d]);
      if (!Number.isSafeInteger(offsets[d])) bad(c.what, "chunk offset is too large");
    }
    out.push({ offsets, size, filterMask, address });
  }
  return out;
}
