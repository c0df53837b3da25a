/**
 * Version 1 B-trees ("TREE"): the index of a version 1 group's symbol table nodes (type 0)
 * and of a chunked dataset's chunks (type 1). Walked depth first; a node met twice or a
 * level that does not go down is reported as corrupt, so a hostile file cannot loop.
 *
 * @module
 */
import { bad, UNDEF } from "./cursor.ts";
import type { H5File } from "./h5file.ts";
import { heapString } from "./heap.ts";

/** One chunk as the B-tree records it. */
export interface ChunkRecord {
  /** The chunk's first element, per dimension. */
  offsets: number[];
  /** Bytes stored (after the filters). */
  size: number;
  filterMask: number;
  /** Absolute. */
  address: number;
}

/** The most children of one node (HDF5's K is at most 2^15 - 1 per half). */
const MAX_ENTRIES = 65536;

async function walk(
  f: H5File,
  root: number,
  type: number,
  keySize: number,
  what: string,
  onLeaf: (key: Uint8Array, child: number) => void | Promise<void>,
  lastKey?: (key: Uint8Array) => void,
): Promise<void> {
  const seen = new Set<number>();
  const visit = async (at: number, level: number | null): Promise<void> => {
    const w = `${what}: B-tree node at ${at}`;
    if (seen.has(at)) bad(w, "met twice (a cycle)");
    seen.add(at);
    const o = f.sb.offsetSize;
    const head = await f.cursor(at, 8 + 2 * o, w);
    head.signature("TREE");
    const t = head.u8(), lvl = head.u8(), n = head.u16();
    if (t !== type) bad(w, `type ${t}, expected ${type}`);
    if (level !== null && lvl !== level) bad(w, `level ${lvl}, expected ${level}`);
    if (n > MAX_ENTRIES) bad(w, `${n} entries`);
    const c = await f.cursor(at + 8 + 2 * o, (n + 1) * keySize + n * o, w);
    for (let i = 0; i < n; i++) {
      const key = c.take(keySize);
      const child = f.abs(c.address("child address"));
      if (lvl > 0) await visit(child, lvl - 1);
      else await onLeaf(key, child);
    }
    lastKey?.(c.take(keySize));
  };
  await visit(root, null);
}

/** The chunks of a dataset of `rank` dimensions whose index is the B-tree at `root`. */
export async function chunkRecords(
  f: H5File,
  root: number,
  rank: number,
  what: string,
): Promise<ChunkRecord[]> {
  const out: ChunkRecord[] = [];
  await walk(f, root, 1, 8 + 8 * (rank + 1), what, (key, child) => {
    const c = f.over(key, `${what}: chunk key`);
    const size = c.u32(), filterMask = c.u32();
    const offsets: number[] = [];
    for (let i = 0; i < rank; i++) offsets.push(c.uint(8, "a chunk offset"));
    out.push({ offsets, size, filterMask, address: child });
  });
  return out;
}

/** The links (name -> object header, absolute; UNDEF for a soft link) of a version 1
 * group. */
export async function symbolTableLinks(
  f: H5File,
  btree: number,
  heap: Uint8Array,
  what: string,
): Promise<[string, number][]> {
  const out: [string, number][] = [];
  const o = f.sb.offsetSize;
  await walk(f, btree, 0, f.sb.lengthSize, what, async (_key, node) => {
    const w = `${what}: symbol table node at ${node}`;
    const head = await f.cursor(node, 8, w);
    head.signature("SNOD");
    if (head.u8() !== 1) bad(w, "unknown version");
    head.skip(1);
    const n = head.u16();
    const entry = 2 * o + 24;
    const c = await f.cursor(node + 8, n * entry, w);
    for (let i = 0; i < n; i++) {
      const nameOffset = c.uint(o, "name offset");
      const header = f.abs(c.address("object header"));
      const cache = c.u32();
      c.skip(20);
      // Cache type 2 is a soft link (its value in the heap): no object header.
      out.push([heapString(heap, nameOffset, w), cache === 2 ? UNDEF : header]);
    }
  });
  return out;
}
