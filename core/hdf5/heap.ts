/**
 * Heaps: the local heap ("HEAP") that holds the link names of a version 1 group, and the
 * global heap collections ("GCOL") that hold variable-length data (h5py's string
 * attributes).
 *
 * @module
 */
import { bad } from "./cursor.ts";
import type { H5File } from "./h5file.ts";

/** A local heap's data segment. */
export async function readLocalHeap(f: H5File, at: number, what: string): Promise<Uint8Array> {
  const w = `${what}: local heap`;
  const c = await f.cursor(at, 8 + 2 * f.sb.lengthSize + f.sb.offsetSize, w);
  c.signature("HEAP");
  const version = c.u8();
  if (version !== 0) bad(w, `version ${version}`);
  c.skip(3);
  const size = c.length("data segment size");
  c.length(); // free list head
  const data = f.abs(c.address("data segment address"));
  return (await f.cursor(data, size, w)).bytes;
}

/** The null-terminated string at `offset` of a local heap's data segment. */
export function heapString(heap: Uint8Array, offset: number, what: string): string {
  if (offset >= heap.length) bad(what, `name offset ${offset} is outside its heap`);
  const end = heap.indexOf(0, offset);
  if (end < 0) bad(what, `name at ${offset} is not terminated`);
  return new TextDecoder().decode(heap.subarray(offset, end));
}

/** Reads objects out of global heap collections, each collection read once. */
export function globalHeap(
  f: H5File,
): (address: number, index: number, what: string) => Promise<Uint8Array> {
  const cache = new Map<number, Map<number, Uint8Array>>();
  return async (address, index, what) => {
    const at = f.abs(address);
    let objects = cache.get(at);
    if (!objects) {
      const w = `${what}: global heap at ${at}`;
      const head = await f.cursor(at, 8 + f.sb.lengthSize, w);
      head.signature("GCOL");
      if (head.u8() !== 1) bad(w, "unknown version");
      head.skip(3);
      const size = head.length("collection size");
      const c = await f.cursor(at, size, w);
      c.skip(8 + f.sb.lengthSize);
      objects = new Map();
      while (c.left >= 8 + f.sb.lengthSize) {
        const i = c.u16();
        c.skip(6);
        const n = c.length("object size");
        if (i === 0) break; // free space
        objects.set(i, c.take(n));
        c.skip(Math.min(c.left, (8 - (n % 8)) % 8));
      }
      cache.set(at, objects);
    }
    const obj = objects.get(index);
    if (!obj) bad(what, `global heap object ${index} at ${at} does not exist`);
    return obj;
  };
}
