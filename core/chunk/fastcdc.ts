/**
 * FastCDC content-defined chunking (Xia et al., "The Design of Fast Content-Defined Chunking
 * for Data Deduplication Based Storage Systems", 2020): a gear rolling hash, cut-point skipping
 * below the minimum size, and normalized chunking (level 2): a stricter mask before the average
 * size and a looser one after it, so chunk sizes cluster around the average. The exact
 * definition is in docs/CHUNKING.md.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { cdcMasks, GEAR } from "./gear.ts";
import { exactSize } from "../format/bytes.ts";

export interface CdcParams {
  min: number;
  avg: number;
  max: number;
}

export const DEFAULT_CDC: CdcParams = { min: 16384, avg: 65536, max: 131072 };

/** Throws HexzError("usage") unless 64 <= min < avg < max <= 64 MiB and avg is a power of two. */
const size = (n: number) => Number.isInteger(n) && n > 0 ? exactSize(n) : String(n);

export function validateCdcParams(p: CdcParams): void {
  const ok = Number.isInteger(p.min) && Number.isInteger(p.avg) && Number.isInteger(p.max) &&
    p.min >= 64 && p.min < p.avg && p.avg < p.max && p.max <= 64 * 1024 * 1024;
  if (!ok) {
    throw new HexzError(
      "usage",
      `CDC sizes must satisfy 64 B <= min < avg < max <= 64 MiB (got min ${size(p.min)}, avg ${
        size(p.avg)
      }, max ${size(p.max)})`,
    );
  }
  if ((p.avg & (p.avg - 1)) !== 0) {
    throw new HexzError("usage", `CDC average chunk must be a power of two (got ${size(p.avg)})`);
  }
}

/**
 * Length of the chunk that starts at `start`, looking at no more than `end - start` bytes.
 * Returns `end - start` when no cut is found before `end` (the caller decides whether that is
 * a real end of input).
 */
export function nextCut(
  data: Uint8Array,
  start: number,
  end: number,
  p: CdcParams,
  small: number,
  large: number,
): number {
  const n = end - start;
  if (n <= p.min) return n;
  const limit = Math.min(n, p.max);
  const normal = Math.min(limit, p.avg);
  let fp = 0;
  let i = p.min;
  // The gear hash of a chunk starts fresh; the first `min` bytes are skipped entirely.
  for (; i < normal; i++) {
    fp = ((fp << 1) + GEAR[data[start + i]]) | 0;
    if ((fp & small) === 0) return i + 1;
  }
  for (; i < limit; i++) {
    fp = ((fp << 1) + GEAR[data[start + i]]) | 0;
    if ((fp & large) === 0) return i + 1;
  }
  return limit;
}

/**
 * Chunk boundaries in `data`: the END offsets (exclusive) of consecutive chunks starting at 0.
 * When `eof` is false, bytes after the last decided cut are not covered (the caller carries
 * them into the next call); a chunk is decided when a cut is found or it reaches `max`. When
 * `eof` is true, the last chunk ends at `data.length`.
 */
export function findCutsReference(data: Uint8Array, params: CdcParams, eof: boolean): Uint32Array {
  const { small, large } = cdcMasks(params.avg);
  const cuts: number[] = [];
  let pos = 0;
  while (pos < data.length) {
    const len = nextCut(data, pos, data.length, params, small, large);
    // A chunk that runs into the end of the buffer is only decided at max size or at eof.
    if (pos + len === data.length && len < params.max && !eof) break;
    pos += len;
    cuts.push(pos);
  }
  return Uint32Array.from(cuts);
}
