/**
 * The block pipeline of `pack`: turns a stream of blocks into processed blocks (zero flag,
 * BLAKE3, compressed payload), in order. The serial pipeline works on the calling thread and
 * compresses only blocks the caller has not seen (`isNew`); the parallel ones hand the pack
 * workers of a pool (pool.ts) ranges of files to read or batches of about 1 MiB of blocks as
 * transferred buffers (a message costs about 20 µs here, so batches amortise it), keep a
 * bounded number in flight, and restore the order. The workers' kernel (range_kernel.ts)
 * computes per block what `processBlock` does, so archives are byte-identical whichever is
 * used (tests/pipeline_test.ts compares them).
 *
 * @module
 */
import { blake3 } from "../hash/blake3.ts";
import type { BlockCompressor } from "../codec/codec.ts";
import { isZeroBlock } from "./zero.ts";
import { createTurns } from "../io/turns.ts";
import type { PackPool, RangePart, WorkerResult } from "./pool.ts";

export interface ProcessedBlock {
  length: number;
  zero: boolean;
  /** BLAKE3-256 of the block (undefined for zero blocks). */
  hash?: Uint8Array;
  /** The payload to store and its codec; absent for zero blocks, and in the serial pipeline
   * for blocks `isNew` said are known (they are never stored). */
  payload?: Uint8Array;
  codec: number;
}

/** One block's work, identical in the serial path and the workers. */
export function processBlock(
  block: Uint8Array,
  compressor: BlockCompressor,
  isNew: (hash: Uint8Array) => boolean = () => true,
): ProcessedBlock {
  if (isZeroBlock(block)) return { length: block.length, zero: true, codec: 0 };
  const hash = blake3(block);
  if (!isNew(hash)) return { length: block.length, zero: false, hash, codec: 0 };
  const { payload, codec } = compressor.compress(block);
  return { length: block.length, zero: false, hash, payload, codec };
}

/**
 * The pipeline on this thread. Blocks for which `inHole(offset, length)` is true (asked in
 * order) lie in holes of a sparse file: zero blocks, not scanned.
 */
export async function* serialPipeline(
  blocks: AsyncIterable<Uint8Array>,
  compressor: BlockCompressor,
  isNew: (hash: Uint8Array) => boolean,
  inHole?: (offset: number, length: number) => boolean,
): AsyncGenerator<ProcessedBlock> {
  let pos = 0;
  const turn = createTurns();
  for await (const b of blocks) {
    yield inHole?.(pos, b.length)
      ? { length: b.length, zero: true, codec: 0 }
      : processBlock(b, compressor, isNew);
    pos += b.length;
    await turn();
  }
}

const BATCH_BYTES = 1024 * 1024;

function* unpack(r: WorkerResult): Generator<ProcessedBlock> {
  const hashes = new Uint8Array(r.hashes);
  const payloads = new Uint8Array(r.payloads);
  let off = 0;
  for (let i = 0; i < r.codecs.length; i++) {
    const n = r.payloadLengths[i];
    if (r.codecs[i] === -1) {
      yield { length: Math.abs(r.lengths[i]), zero: true, codec: 0 };
      continue;
    }
    if (r.codecs[i] === -2) {
      // A repeat of a block this worker sent earlier: the writer already knows it.
      yield {
        length: r.lengths[i],
        zero: false,
        hash: hashes.subarray(32 * i, 32 * i + 32),
        codec: 0,
      };
      continue;
    }
    yield {
      length: r.lengths[i],
      zero: false,
      hash: hashes.subarray(32 * i, 32 * i + 32),
      payload: payloads.subarray(off, off + n),
      codec: r.codecs[i],
    };
    off += n;
  }
}

/**
 * The parallel pipeline for blocks the caller holds. Yields processed blocks in input order.
 * Memory is bounded by 2 batches per worker in flight.
 */
export async function* parallelPipeline(
  blocks: AsyncIterable<Uint8Array>,
  pool: PackPool,
): AsyncGenerator<ProcessedBlock> {
  // Blocks are copied once, straight into the batch buffer that is then transferred. Zero
  // blocks are found here (cheaply) and travel as a length only.
  let data = new Uint8Array(BATCH_BYTES);
  let fill = 0;
  let lengths: number[] = [];
  const send = () => {
    if (!lengths.length) return;
    pool.submit({ type: "batch", seq: 0, data: data.buffer, lengths }, [data.buffer]);
    data = new Uint8Array(BATCH_BYTES);
    fill = 0;
    lengths = [];
  };
  const add = (b: Uint8Array) => {
    if (isZeroBlock(b)) {
      lengths.push(-b.length);
      return;
    }
    if (fill + b.length > data.length) {
      if (fill > 0) send();
      if (b.length > data.length) data = new Uint8Array(b.length);
    }
    data.set(b, fill);
    fill += b.length;
    lengths.push(b.length);
  };
  try {
    for await (const b of blocks) {
      add(b);
      // A batch also closes after many zero blocks, so results keep flowing.
      if (fill >= BATCH_BYTES || lengths.length >= 4096) {
        send();
        while (pool.inFlight >= 2 * pool.size) yield* unpack(await pool.next());
      }
    }
    send();
    while (pool.inFlight > 0) yield* unpack(await pool.next());
  } finally {
    // A run abandoned midway leaves results in flight that would reach the next one.
    if (pool.inFlight > 0) pool.close();
  }
}

/** Logical bytes per range message of the file pipeline (zero blocks cost little). */
const RANGE_BYTES = 4 * 1024 * 1024;

/** A file for `parallelFilesPipeline`. */
export interface PipelineFile {
  path: string;
  /** Its block lengths in file order from offset 0. */
  lengths: Iterable<number> | AsyncIterable<number>;
  /** Whether a block (asked in file order) lies wholly in a hole of the file. */
  inHole?: (offset: number, length: number) => boolean;
  /** Its size when listed: checked by the worker that reads its last bytes. */
  size?: number;
  /** Its modification time when listed (ms): checked likewise. */
  mtimeMs?: number;
}

/**
 * The parallel pipeline for a regular file: the workers read their ranges of the file
 * themselves (positioned reads into WebAssembly memory), so this thread neither copies nor
 * ships block bytes, it only writes the results. `lengths` are the block lengths in file order
 * from offset 0: computed for fixed-size blocks, or the cuts of a chunker that read the file
 * here (the workers then read those bytes again, from the page cache). Blocks for which
 * `inHole(offset, length)` is true (asked in file order) lie in holes of a sparse file: they
 * are zero blocks that no worker reads. Yields processed blocks in file order.
 */
export function parallelFilePipeline(
  path: string,
  lengths: Iterable<number> | AsyncIterable<number>,
  pool: PackPool,
  inHole?: (offset: number, length: number) => boolean,
): AsyncGenerator<ProcessedBlock> {
  return parallelFilesPipeline([{ path, lengths, inHole }], pool);
}

/**
 * `parallelFilePipeline` for files one after another (the files of a directory tree): a range
 * message carries the pieces of as many files as make RANGE_BYTES, so a worker opens and reads
 * many small files itself. Yields processed blocks in order, file after file.
 */
export async function* parallelFilesPipeline(
  files: Iterable<PipelineFile> | AsyncIterable<PipelineFile>,
  pool: PackPool,
): AsyncGenerator<ProcessedBlock> {
  // What comes out, in order: the result of the next range sent to the pool (null), or a run
  // of `count` zero blocks of `length` bytes found in holes.
  const order: ({ length: number; count: number } | null)[] = [];
  let head = 0;
  try {
    let parts: RangePart[] = [];
    let part: RangePart | null = null;
    let batch: number[] = [];
    let bytes = 0;
    const send = () => {
      if (part) parts.push(part);
      part = null;
      if (!batch.length) return;
      pool.submit({ type: "range", seq: 0, parts, lengths: batch }, []);
      order.push(null);
      parts = [];
      batch = [];
      bytes = 0;
    };
    // Yields what is ready: hole runs at the head, and pool results while `full()`.
    const emit = async function* (full: () => boolean): AsyncGenerator<ProcessedBlock> {
      while (head < order.length) {
        const o = order[head];
        if (o) {
          for (let k = 0; k < o.count; k++) yield { length: o.length, zero: true, codec: 0 };
        } else if (full()) yield* unpack(await pool.next());
        else break;
        head++;
        if (head > 1024 && head * 2 > order.length) {
          order.splice(0, head);
          head = 0;
        }
      }
    };
    for await (const f of files) {
      let pos = 0;
      for await (const n of f.lengths) {
        if (f.inHole?.(pos, n)) {
          send(); // a range is contiguous: a hole ends the one being gathered
          const last = order[order.length - 1];
          if (order.length > head && last && last.length === n) last.count++;
          else order.push({ length: n, count: 1 });
        } else {
          if (!part) {
            part = { path: f.path, offset: pos, length: 0, size: f.size, mtimeMs: f.mtimeMs };
          }
          part.length += n;
          batch.push(n);
          bytes += n;
        }
        pos += n;
        if (bytes >= RANGE_BYTES) send();
        yield* emit(() => pool.inFlight >= 2 * pool.size);
      }
      if (part) parts.push(part);
      part = null;
    }
    send();
    yield* emit(() => true);
  } finally {
    // A run abandoned midway leaves results in flight that would reach the next one.
    if (pool.inFlight > 0) pool.close();
  }
}

/** Block lengths of `size` bytes cut into `blockSize` blocks. */
export function* fixedLengths(size: number, blockSize: number): Generator<number> {
  for (let offset = 0; offset < size; offset += blockSize) yield Math.min(blockSize, size - offset);
}
