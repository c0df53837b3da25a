/**
 * The block pipeline of `pack`: turns a stream of blocks into processed blocks (zero flag,
 * BLAKE3, compressed payload), in order. The serial pipeline works on the calling thread and
 * compresses only blocks the caller has not seen (`isNew`); the parallel one ships batches of
 * about 1 MiB to Web Workers as transferred buffers (a message costs about 20 µs here, so
 * batches amortise it), keeps a bounded number in flight, and restores the order. Both run the
 * same code per block, so archives are byte-identical whichever is used.
 *
 * @module
 */
import { blake3 } from "../hash/blake3.ts";
import { type BlockCompressor, createCompressor } from "../codec/codec.ts";
import type { CodecName } from "../format/constants.ts";
import { isZeroBlock } from "./zero.ts";

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

export interface PipelineOptions {
  compression: CodecName;
  level: number;
  /** Worker count; 0 or 1 means the serial pipeline. */
  workers: number;
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

export async function* serialPipeline(
  blocks: AsyncIterable<Uint8Array>,
  compressor: BlockCompressor,
  isNew: (hash: Uint8Array) => boolean,
): AsyncGenerator<ProcessedBlock> {
  for await (const b of blocks) yield processBlock(b, compressor, isNew);
}

const BATCH_BYTES = 1024 * 1024;

/** Messages to and from pack workers (see worker.ts). */
export interface WorkerInit {
  type: "init";
  compression: CodecName;
  level: number;
}
export interface WorkerBatch {
  type: "batch";
  seq: number;
  data: ArrayBuffer;
  lengths: number[];
}
export interface WorkerResult {
  type: "result";
  seq: number;
  /** Per block: its length, and -1 when zero or else the codec id. */
  lengths: number[];
  codecs: number[];
  /** Payload lengths (0 for zero blocks). */
  payloadLengths: number[];
  hashes: ArrayBuffer;
  payloads: ArrayBuffer;
}
export interface WorkerError {
  type: "error";
  message: string;
}

/** Starts `n` pack workers; throws if workers cannot start here (e.g. in a bundle). */
function startWorkers(n: number, init: WorkerInit): Worker[] {
  const url = new URL("./worker.ts", import.meta.url).href;
  const workers: Worker[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const w = new Worker(url, { type: "module" });
      w.postMessage(init);
      workers.push(w);
    }
  } catch (e) {
    for (const w of workers) w.terminate();
    throw e;
  }
  return workers;
}

/**
 * The parallel pipeline. Yields processed blocks in input order. Memory is bounded by
 * 2 batches per worker in flight.
 */
export async function* parallelPipeline(
  blocks: AsyncIterable<Uint8Array>,
  opts: PipelineOptions,
): AsyncGenerator<ProcessedBlock> {
  const workers = startWorkers(opts.workers, {
    type: "init",
    compression: opts.compression,
    level: opts.level,
  });
  const pending = new Map<
    number,
    { resolve: (r: WorkerResult) => void; reject: (e: Error) => void }
  >();
  const results = new Map<number, Promise<WorkerResult>>();
  let failure: Error | null = null;
  for (const w of workers) {
    w.onmessage = (ev: MessageEvent<WorkerResult | WorkerError>) => {
      const m = ev.data;
      if (m.type === "error") {
        failure = new Error(`pack worker: ${m.message}`);
        for (const p of pending.values()) p.reject(failure);
        pending.clear();
        return;
      }
      const p = pending.get(m.seq);
      pending.delete(m.seq);
      p?.resolve(m);
    };
    w.onerror = (ev) => {
      ev.preventDefault();
      failure = new Error(`pack worker failed: ${ev.message}`);
      for (const p of pending.values()) p.reject(failure);
      pending.clear();
    };
  }
  const maxInFlight = 2 * workers.length;
  let nextSeq = 0;
  let nextOut = 0;
  let batch: Uint8Array[] = [];
  let batchBytes = 0;

  const send = () => {
    if (!batch.length) return;
    const data = new Uint8Array(batchBytes);
    let off = 0;
    for (const b of batch) {
      data.set(b, off);
      off += b.length;
    }
    const seq = nextSeq++;
    const msg: WorkerBatch = {
      type: "batch",
      seq,
      data: data.buffer,
      lengths: batch.map((b) => b.length),
    };
    const result = new Promise<WorkerResult>((resolve, reject) => {
      if (failure) return reject(failure);
      pending.set(seq, { resolve, reject });
    });
    // Awaited in order later; mark it handled so an early failure is not "unhandled".
    result.catch(() => {});
    results.set(seq, result);
    workers[seq % workers.length].postMessage(msg, [data.buffer]);
    batch = [];
    batchBytes = 0;
  };

  function* unpack(r: WorkerResult): Generator<ProcessedBlock> {
    const hashes = new Uint8Array(r.hashes);
    const payloads = new Uint8Array(r.payloads);
    let off = 0;
    for (let i = 0; i < r.codecs.length; i++) {
      const n = r.payloadLengths[i];
      if (r.codecs[i] < 0) {
        yield { length: r.lengths[i], zero: true, codec: 0 };
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

  try {
    const drainOne = async function* () {
      const seq = nextOut++;
      const r = await results.get(seq)!;
      results.delete(seq);
      yield* unpack(r);
    };
    for await (const b of blocks) {
      batch.push(b.slice());
      batchBytes += b.length;
      if (batchBytes >= BATCH_BYTES) {
        send();
        while (nextSeq - nextOut >= maxInFlight) yield* drainOne();
      }
    }
    send();
    while (nextOut < nextSeq) yield* drainOne();
  } finally {
    for (const w of workers) w.terminate();
  }
}

/** The default worker count: the machine's cores. */
export function defaultWorkers(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

export { createCompressor };
