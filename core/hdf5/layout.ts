/**
 * The data layout message (0x08), versions 3 and 4: where a dataset's elements are. Compact
 * (in the header), contiguous (one range of the file), or chunked with its chunk index: a
 * version 1 B-tree (layout version 3), or one of version 4's single chunk, implicit, fixed
 * array, extensible array and version 2 B-tree indexes. Virtual datasets and layout versions
 * 1-2 are refused with a reason.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { bad, type Cursor, UNDEF } from "./cursor.ts";

export type ChunkIndex =
  | { type: "btree1"; address: number }
  | { type: "single"; address: number; filteredSize?: number; filterMask?: number }
  | { type: "implicit"; address: number }
  | { type: "fixed-array"; address: number }
  | { type: "extensible-array"; address: number }
  | { type: "btree2"; address: number };

export type Layout =
  | { class: "compact"; data: Uint8Array }
  | { class: "contiguous"; address: number; size: number }
  | { class: "chunked"; chunk: number[]; elementSize: number; index: ChunkIndex };

function unsupported(what: string, reason: string): never {
  throw new HexzError("unsupported", `${what}: ${reason} is not supported`);
}

/** Parses a layout message; addresses are returned as in the file (relative to the base). */
export function parseLayout(c: Cursor): Layout {
  const what = c.what;
  const version = c.u8();
  if (version < 3) unsupported(what, `data layout version ${version} (HDF5 before 1.6.3)`);
  if (version > 4) bad(what, `data layout version ${version}`);
  const cls = c.u8();
  if (cls === 0) {
    const size = c.u16();
    return { class: "compact", data: c.take(size) };
  }
  if (cls === 1) {
    const address = c.address();
    const size = c.length("contiguous size");
    return { class: "contiguous", address, size };
  }
  if (cls === 3) unsupported(what, "a virtual dataset");
  if (cls !== 2) bad(what, `unknown layout class ${cls}`);
  if (version === 3) {
    const rank = c.u8();
    if (rank < 2 || rank > 33) bad(what, `chunk rank ${rank}`);
    const address = c.address();
    const dims: number[] = [];
    for (let i = 0; i < rank; i++) dims.push(c.u32());
    // The last dimension is the element size.
    return {
      class: "chunked",
      chunk: dims.slice(0, -1),
      elementSize: dims[rank - 1],
      index: { type: "btree1", address },
    };
  }
  const flags = c.u8();
  const rank = c.u8();
  if (rank < 2 || rank > 33) bad(what, `chunk rank ${rank}`);
  const width = c.u8();
  if (width < 1 || width > 8) bad(what, `chunk dimension width ${width}`);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(c.uint(width, "a chunk dimension"));
  const type = c.u8();
  let index: ChunkIndex;
  if (type === 1) {
    let filteredSize: number | undefined, filterMask: number | undefined;
    if (flags & 2) {
      filteredSize = c.length("filtered chunk size");
      filterMask = c.u32();
    }
    index = { type: "single", address: c.address(), filteredSize, filterMask };
  } else if (type === 2) {
    index = { type: "implicit", address: c.address() };
  } else if (type === 3) {
    c.u8(); // page bits (the array's header has them too)
    index = { type: "fixed-array", address: c.address() };
  } else if (type === 4) {
    c.skip(5); // the array's parameters (its header has them too)
    index = { type: "extensible-array", address: c.address() };
  } else if (type === 5) {
    c.skip(6); // node size, split and merge percentages (the tree's header has them too)
    index = { type: "btree2", address: c.address() };
  } else {
    bad(what, `unknown chunk index type ${type}`);
  }
  const elementSize = dims[rank - 1];
  return { class: "chunked", chunk: dims.slice(0, -1), elementSize, index };
}

export { UNDEF };
