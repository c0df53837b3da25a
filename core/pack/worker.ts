/**
 * A pack worker: receives batches of blocks (or file ranges it reads itself), returns for each
 * block its zero flag, BLAKE3 hash and compressed payload (see pipeline.ts for the protocol).
 * Buffers travel as transfers. All the work is range_kernel.ts.
 *
 * The message handler is installed before anything else is loaded (modules with top-level
 * await delay evaluation, and messages that arrive before a handler exists are dropped), and
 * messages are handled one after another in arrival order. The init message says the codec;
 * only a zstd worker loads `node:zlib` (about 20 ms of a worker's start here, where an lz4
 * worker is ready after its own few modules).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { RangeKernel } from "./range_kernel.ts";
import type { WorkerBatch, WorkerError, WorkerInit, WorkerRange, WorkerResult } from "./pool.ts";

type Msg = WorkerInit | WorkerBatch | WorkerRange;
let loaded!: () => void;
// Messages wait for the modules below, then run in order.
let queue = new Promise<void>((resolve) => loaded = resolve);
self.onmessage = (ev: MessageEvent<Msg>) => {
  const m = ev.data;
  queue = queue.then(() => handle(m)).catch(report);
};

const { HexzError } = await import("../errors.ts");
const { bytesKey } = await import("../format/bytes.ts");
const { createRangeKernel } = await import("./range_kernel.ts");
let kernel: RangeKernel | null = null;

/**
 * Hashes of blocks this worker already compressed. A repeat is not compressed again: the
 * writer meets the first one earlier (this worker's blocks reach it in order) and stores the
 * repeat as a reference, so its payload would never be used. Cleared when large, which only
 * costs some compression work.
 */
let seen = new Set<string>();
const SEEN_LIMIT = 1 << 20;
const firstTime = (hash: Uint8Array) => {
  const k = bytesKey(hash);
  if (seen.has(k)) return false;
  if (seen.size >= SEEN_LIMIT) seen = new Set();
  seen.add(k);
  return true;
};

async function handle(m: Msg): Promise<void> {
  if (m.type === "init") {
    const zstdInto = m.compression === "zstd"
      ? (await import("../codec/zstd.ts")).zstdCompressInto
      : undefined;
    kernel = createRangeKernel(m.compression, m.level, firstTime, zstdInto);
    return;
  }
  const k = kernel;
  if (!k) throw new Error(`${m.type} before init`);
  const r = m.type === "range"
    ? k.range(m.parts, m.lengths)
    : k.batch(new Uint8Array(m.data), m.lengths);
  const res: WorkerResult = { type: "result", seq: m.seq, lengths: m.lengths, ...r };
  self.postMessage(res, [r.hashes, r.payloads]);
}

function report(e: unknown) {
  const err: WorkerError = {
    type: "error",
    message: (e as Error).message,
    code: e instanceof HexzError ? e.code : undefined,
  };
  self.postMessage(err);
}

loaded();
