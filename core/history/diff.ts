/**
 * `diff`: which blocks (by BLAKE3 hash) two archives share, and how many bytes that is. Zero
 * blocks are counted apart: they cost nothing in either archive. Blocks are compared by
 * content, so archives must use the same chunking for the figures to mean much (a thin
 * archive always uses its parent's).
 *
 * @module
 */
import { bytesKey } from "../format/bytes.ts";
import { KIND, STREAMS } from "../format/constants.ts";
import type { Archive } from "../read/archive.ts";
import { expectArchive } from "../args.ts";

export interface DiffSide {
  blocks: number;
  /** Logical bytes of non-zero blocks. */
  bytes: number;
  zeroBytes: number;
  /** Distinct non-zero blocks, and their bytes. */
  distinctBlocks: number;
  distinctBytes: number;
  /** Distinct blocks found only in this archive, and their bytes. */
  uniqueBlocks: number;
  uniqueBytes: number;
}

export interface DiffReport {
  a: DiffSide;
  b: DiffSide;
  /** Distinct blocks present in both, and their bytes (each counted once). */
  sharedBlocks: number;
  sharedBytes: number;
  /** Bytes of content stored once instead of twice when both live in one chain. */
  dedupSavings: number;
  /** Fraction of b's non-zero bytes whose blocks are not in a (0 = same content, 1 = all new);
   * null when b holds no non-zero bytes (a fraction of nothing). */
  changedFraction: number | null;
  sameChunking: boolean;
}

async function blockSet(a: Archive) {
  const hashes = new Map<string, number>();
  let blocks = 0;
  let bytes = 0;
  let zeroBytes = 0;
  for (let s = 0; s < STREAMS.length; s++) {
    for await (const b of a.blocks(s)) {
      blocks++;
      if (b.entry.kind === KIND.zero) {
        zeroBytes += b.entry.logicalLength;
        continue;
      }
      bytes += b.entry.logicalLength;
      hashes.set(
        bytesKey(b.entry.hash),
        b.entry.logicalLength,
      );
    }
  }
  return { hashes, blocks, bytes, zeroBytes };
}

export async function diffArchives(a: Archive, b: Archive): Promise<DiffReport> {
  expectArchive(a, "diff: first archive");
  expectArchive(b, "diff: second archive");
  const [x, y] = await Promise.all([blockSet(a), blockSet(b)]);
  let sharedBlocks = 0;
  let sharedBytes = 0;
  for (const [h, n] of y.hashes) {
    if (x.hashes.has(h)) {
      sharedBlocks++;
      sharedBytes += n;
    }
  }
  const side = (s: typeof x): DiffSide => {
    let distinctBytes = 0;
    for (const n of s.hashes.values()) distinctBytes += n;
    return {
      blocks: s.blocks,
      bytes: s.bytes,
      zeroBytes: s.zeroBytes,
      distinctBlocks: s.hashes.size,
      distinctBytes,
      uniqueBlocks: s.hashes.size - sharedBlocks,
      uniqueBytes: distinctBytes - sharedBytes,
    };
  };
  const sa = side(x);
  const sb = side(y);
  // b's non-zero bytes (with repeats) that a does not hold.
  let changed = 0;
  for await (const blk of allBlocks(b)) {
    if (blk.kind === KIND.zero) continue;
    if (!x.hashes.has(bytesKey(blk.hash))) {
      changed += blk.logicalLength;
    }
  }
  const ha = a.header;
  const hb = b.header;
  return {
    a: sa,
    b: sb,
    sharedBlocks,
    sharedBytes,
    dedupSavings: sharedBytes,
    changedFraction: y.bytes ? changed / y.bytes : null,
    sameChunking: ha.chunking === hb.chunking && ha.blockSize === hb.blockSize &&
      ha.cdcMin === hb.cdcMin && ha.cdcAvg === hb.cdcAvg && ha.cdcMax === hb.cdcMax,
  };
}

async function* allBlocks(a: Archive) {
  for (let s = 0; s < STREAMS.length; s++) for await (const b of a.blocks(s)) yield b.entry;
}
