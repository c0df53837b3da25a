/**
 * A chunked dataset's chunks, from whichever index it has (version 1 B-tree, single chunk,
 * implicit, fixed array), as one list of records, each checked: on the chunk grid, inside
 * the dataset, stored inside the file, and met once.
 *
 * @module
 */
import { bad, UNDEF } from "./cursor.ts";
import type { H5File } from "./h5file.ts";
import { type ChunkRecord, chunkRecords } from "./btree.ts";
import { fixedArray } from "./fixed_array.ts";
import type { Layout } from "./layout.ts";

export type { ChunkRecord };

/** The chunk grid: how many chunks along each dimension. */
export function gridOf(shape: number[], chunk: number[]): number[] {
  return shape.map((d, i) => Math.ceil(d / chunk[i]));
}

/** The records of the chunks that exist (a missing chunk reads as the fill value). */
export async function listChunks(
  f: H5File,
  layout: Extract<Layout, { class: "chunked" }>,
  shape: number[],
  chunkBytes: number,
  what: string,
): Promise<ChunkRecord[]> {
  const { index, chunk } = layout;
  const grid = gridOf(shape, chunk);
  const count = grid.reduce((a, b) => a * b, 1);
  const at = f.abs(index.address);
  let records: ChunkRecord[] = [];
  const offsetsOf = (i: number) => {
    const out = new Array<number>(grid.length);
    for (let d = grid.length - 1; d >= 0; d--) {
      out[d] = (i % grid[d]) * chunk[d];
      i = Math.floor(i / grid[d]);
    }
    return out;
  };
  if (at === UNDEF || count === 0) return [];
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
      for (let i = 0; i < count; i++) {
        records.push({
          offsets: offsetsOf(i),
          size: chunkBytes,
          filterMask: 0,
          address: at + i * chunkBytes,
        });
      }
      break;
    case "fixed-array": {
      const entries = await fixedArray(f, at, count, what);
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
  }
  const seen = new Set<string>();
  for (const r of records) {
    const w = `${what}: chunk at [${r.offsets.join(",")}]`;
    r.offsets.forEach((o, d) => {
      if (o % chunk[d] !== 0 || o >= shape[d]) bad(w, "is not on the dataset's chunk grid");
    });
    const key = r.offsets.join(",");
    if (seen.has(key)) bad(w, "is indexed twice");
    seen.add(key);
    if (r.address === UNDEF || r.address + r.size > f.src.size) {
      bad(w, `${r.size} bytes at ${r.address} lie outside the file (${f.src.size} bytes)`);
    }
  }
  return records;
}
