/**
 * Which parts of a stream are known to be zero: the runs of zero blocks, as the index records
 * them, and the rest. No block is read. Servers report these as holes (NBD block status and
 * sparse reads); a block stored in a parent counts as data (its content is not looked at).
 *
 * @module
 */
import { KIND } from "../format/constants.ts";
import type { Archive, StreamRef } from "./archive.ts";
import { resolveStream } from "./archive.ts";

export interface Extent {
  offset: number;
  length: number;
  /** True: reads as zeros (a zero block); false: data, or not known to be zero. */
  zero: boolean;
}

/** Appends `e` to `out`, joining it to the last extent when they are of the same kind. */
export function appendExtent(out: Extent[], e: Extent): void {
  const last = out[out.length - 1];
  if (last && last.zero === e.zero) last.length += e.length;
  else out.push({ ...e });
}

/**
 * The extents covering [offset, offset + length) of the stream (clamped to its size), adjacent
 * ones of the same kind merged. With `maxExtents`, stops after that many: the extents then
 * cover a prefix of the range.
 */
export async function extents(
  a: Archive,
  streamRef: StreamRef,
  offset: number,
  length: number,
  maxExtents = Infinity,
): Promise<Extent[]> {
  const stream = resolveStream(streamRef);
  const end = Math.min(offset + length, a.size(stream));
  const out: Extent[] = [];
  if (!(offset < end) || offset < 0) return out;
  const s = a.header.streams[stream];
  // The last page whose range starts at or before `offset`.
  let lo = s.firstPage, hi = s.firstPage + s.pageCount - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (a.pages[mid].firstOffset <= offset) lo = mid;
    else hi = mid - 1;
  }
  let pos = offset;
  for (let pi = lo; pi < s.firstPage + s.pageCount && pos < end; pi++) {
    const p = await a.page(pi);
    // The first entry that ends after `pos`.
    let k = 0, kh = p.entries.length - 1;
    while (k < kh) {
      const mid = (k + kh) >>> 1;
      if (p.offsets[mid + 1] <= pos) k = mid + 1;
      else kh = mid;
    }
    for (; k < p.entries.length && pos < end; k++) {
      const to = Math.min(p.offsets[k + 1], end);
      if (to <= pos) continue;
      const zero = p.entries[k].kind === KIND.zero;
      if (out.length >= maxExtents && out[out.length - 1]?.zero !== zero) return out;
      appendExtent(out, { offset: pos, length: to - pos, zero });
      pos = to;
    }
  }
  return out;
}
