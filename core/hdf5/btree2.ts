/**
 * Version 2 B-trees ("BTHD" header, "BTIN" internal and "BTLF" leaf nodes, each with a lookup3
 * checksum): here, the name index of a group's dense link storage, whose records hold the
 * fractal heap IDs of the links. The widths of the child counts in internal nodes follow from
 * the node size as in HDF5's H5B2__hdr_init.
 *
 * @module
 */
import { lookup3 } from "./checksum.ts";
import { bad, type Cursor } from "./cursor.ts";
import type { H5File } from "./h5file.ts";

/** Bytes of a node's signature, version, type and checksum. */
const PREFIX = 10;

/** Bytes needed to store `n` (HDF5's H5VM_limit_enc_size: floor(log2 n) / 8 + 1). */
function encSize(n: number): number {
  let log = 0;
  while (2 ** (log + 1) <= n) log++;
  return Math.floor(log / 8) + 1;
}

function checksum(c: Cursor, what: string) {
  const end = c.pos;
  if (lookup3(c.bytes.subarray(0, end)) !== c.u32()) bad(what, "checksum mismatch");
}

/** Every record of the version 2 B-tree at `at` (absolute), in key order, and the tree's
 * record type, which must be one of `types`. */
export async function btree2Records(
  f: H5File,
  at: number,
  types: number[],
  what: string,
): Promise<{ type: number; records: Uint8Array[] }> {
  const o = f.sb.offsetSize;
  const w = `${what}: v2 B-tree header`;
  const h = await f.cursor(at, 16 + o + 2 + f.sb.lengthSize + 4, w);
  h.signature("BTHD");
  if (h.u8() !== 0) bad(w, "unknown version");
  const type = h.u8();
  if (!types.includes(type)) bad(w, `record type ${type}, expected ${types.join(" or ")}`);
  const nodeSize = h.u32(), recordSize = h.u16(), depth = h.u16();
  h.skip(2);
  const root = f.abs(h.address());
  const rootCount = h.u16();
  const total = h.length("record count");
  checksum(h, w);
  if (nodeSize < 64 || nodeSize > 1 << 24 || recordSize < 1 || recordSize > nodeSize) {
    bad(w, `node size ${nodeSize} with records of ${recordSize} bytes`);
  }
  if (depth > 32) bad(w, `depth ${depth}`);
  // Per depth: the most records of a node, and the width of a subtree's total count.
  const maxRec: number[] = [Math.floor((nodeSize - PREFIX) / recordSize)];
  const cumMax: number[] = [maxRec[0]];
  const cumSize: number[] = [0];
  const nrecSize = encSize(maxRec[0]);
  const pointer = (d: number) => o + nrecSize + (d > 1 ? cumSize[d - 1] : 0);
  for (let d = 1; d <= depth; d++) {
    maxRec[d] = Math.floor((nodeSize - PREFIX - pointer(d)) / (recordSize + pointer(d)));
    cumMax[d] = (maxRec[d] + 1) * cumMax[d - 1] + maxRec[d];
    cumSize[d] = encSize(cumMax[d]);
  }
  const out: Uint8Array[] = [];
  if (total === 0) return { type, records: out };
  const seen = new Set<number>();
  const visit = async (node: number, d: number, count: number): Promise<void> => {
    const nw = `${what}: v2 B-tree node at ${node}`;
    if (seen.has(node)) bad(nw, "met twice (a cycle)");
    seen.add(node);
    if (count > maxRec[d]) bad(nw, `${count} records, at most ${maxRec[d]}`);
    const c = await f.cursor(node, nodeSize, nw);
    c.signature(d ? "BTIN" : "BTLF");
    if (c.u8() !== 0) bad(nw, "unknown version");
    if (c.u8() !== type) bad(nw, "wrong type");
    const records: Uint8Array[] = [];
    for (let i = 0; i < count; i++) records.push(c.take(recordSize));
    const children: [number, number][] = [];
    if (d) {
      for (let i = 0; i <= count; i++) {
        const addr = f.abs(c.address("child address"));
        const n = c.uint(nrecSize, "child record count");
        if (d > 1) c.uint(cumSize[d - 1], "subtree record count");
        children.push([addr, n]);
      }
    }
    checksum(c, nw);
    for (let i = 0; i < count; i++) {
      if (d) await visit(children[i][0], d - 1, children[i][1]);
      out.push(records[i]);
    }
    if (d) await visit(children[count][0], d - 1, children[count][1]);
  };
  await visit(root, depth, rootCount);
  if (out.length !== total) bad(w, `${out.length} records where the header says ${total}`);
  return { type, records: out };
}
