/**
 * The pack workers (worker.ts) and the messages they take. A pool serves one pack: it is
 * started with the pack's codec and level (possibly before the pack is called, so the workers
 * start while the caller still loads or prepares: the command line starts them before it loads
 * the packing code), every stream of that pack goes through it, and the pack closes it.
 * Results are awaited in submission order.
 *
 * This module loads nothing heavy: starting workers must not wait for the code they will run.
 *
 * @module
 */
import { HexzError, type HexzErrorCode } from "../errors.ts";
import type { CodecName } from "../format/constants.ts";
import { moduleBeside, workerCount } from "../workers.ts";
import { checkLevel, DEFAULT_LEVEL } from "../codec/level.ts";

/** Messages to and from pack workers (see worker.ts). */
export interface WorkerInit {
  type: "init";
  compression: CodecName;
  level: number;
}
export interface WorkerBatch {
  type: "batch";
  seq: number;
  /** The non-zero blocks, back to back (the buffer may be longer). */
  data: ArrayBuffer;
  /** Per block, in order: its length, negated for an all-zero block (not in `data`). */
  lengths: number[];
}
/** Bytes of one file that a worker reads itself. */
export interface RangePart {
  path: string;
  offset: number;
  length: number;
  /** The file's size when it was listed: the worker fails if it is not that size now. */
  size?: number;
  /** Its modification time when listed (ms): the worker fails if it changed since. */
  mtimeMs?: number;
}
/** Blocks the worker reads itself: `lengths` consecutive blocks of the parts, back to back
 * (a block never spans two parts). */
export interface WorkerRange {
  type: "range";
  seq: number;
  parts: RangePart[];
  lengths: number[];
}
export interface WorkerResult {
  type: "result";
  seq: number;
  lengths: number[];
  /** Per block: the codec id of its payload; -1 for a zero block, -2 for a repeat of a block
   * the same worker sent earlier (hash only, no payload). */
  codecs: number[];
  /** Payload lengths (0 for zero blocks). */
  payloadLengths: number[];
  hashes: ArrayBuffer;
  payloads: ArrayBuffer;
}
export interface WorkerError {
  type: "error";
  message: string;
  code?: HexzErrorCode;
}

export interface PackPoolOptions {
  /** Worker threads, 1 to 256. */
  workers: number;
  compression: CodecName;
  level: number;
}

/** Pack workers serving one pack. */
export interface PackPool {
  readonly size: number;
  readonly compression: CodecName;
  readonly level: number;
  /** Sends one message; its result is awaited later with `next()`. */
  submit(msg: WorkerBatch | WorkerRange, transfer: ArrayBuffer[]): void;
  /** Messages submitted and not yet taken with `next()`. */
  readonly inFlight: number;
  /** The result of the oldest submitted message. */
  next(): Promise<WorkerResult>;
  /** Stops the workers (again: nothing). */
  close(): void;
}

const workerUrl = () => new URL("./worker.ts", import.meta.url);

/**
 * Whether pack workers can start here: false when this module runs from a single-file bundle
 * (its worker module is not beside it), in which case packs run on the calling thread.
 */
export function packWorkersAvailable(): boolean {
  return moduleBeside(workerUrl());
}

/**
 * Starts the workers of one pack now; throws if workers cannot start here. The caller closes
 * the pool, or hands it to `pack` (PackOptions.pool), which closes it: running workers keep
 * the process alive.
 */
export function startPackPool(opts: PackPoolOptions): PackPool {
  if (!Number.isInteger(opts.workers) || opts.workers < 1 || opts.workers > 256) {
    throw new HexzError("usage", `a pack pool takes 1..256 workers, got ${opts.workers}`);
  }
  const init: WorkerInit = { type: "init", compression: opts.compression, level: opts.level };
  const url = workerUrl().href;
  const workers: Worker[] = [];
  try {
    for (let i = 0; i < opts.workers; i++) {
      const w = new Worker(url, { type: "module" });
      w.postMessage(init);
      workers.push(w);
    }
  } catch (e) {
    for (const w of workers) w.terminate();
    throw e;
  }
  const pending = new Map<
    number,
    { resolve: (r: WorkerResult) => void; reject: (e: Error) => void }
  >();
  const results = new Map<number, Promise<WorkerResult>>();
  let failure: Error | null = null;
  // The first failure is the one every waiting and later result reports (a worker's error
  // is not tied to the message that caused it).
  const fail = (e: Error) => {
    failure ??= e;
    for (const p of pending.values()) p.reject(failure);
    pending.clear();
  };
  for (const w of workers) {
    w.onmessage = (ev: MessageEvent<WorkerResult | WorkerError>) => {
      const m = ev.data;
      if (m.type === "error") return fail(new HexzError(m.code ?? "io", m.message));
      const p = pending.get(m.seq);
      pending.delete(m.seq);
      p?.resolve(m);
    };
    w.onerror = (ev) => {
      ev.preventDefault();
      fail(new Error(`pack worker failed: ${ev.message}`));
    };
  }
  let nextSeq = 0;
  let nextOut = 0;
  let closed = false;
  return {
    size: workers.length,
    compression: opts.compression,
    level: opts.level,
    get inFlight() {
      return nextSeq - nextOut;
    },
    submit(msg, transfer) {
      if (closed) throw new Error("pack pool is closed");
      const seq = nextSeq++;
      msg.seq = seq;
      const result = new Promise<WorkerResult>((resolve, reject) => {
        if (failure) return reject(failure);
        pending.set(seq, { resolve, reject });
      });
      // Awaited in order later; mark it handled so an early failure is not "unhandled".
      result.catch(() => {});
      results.set(seq, result);
      workers[seq % workers.length].postMessage(msg, transfer);
    },
    async next() {
      const seq = nextOut++;
      const r = results.get(seq);
      if (!r) throw new Error("pack pool: next() without a message in flight");
      results.delete(seq);
      return await r;
    },
    close() {
      if (closed) return;
      closed = true;
      for (const w of workers) w.terminate();
    },
  };
}

/** What decides whether a pack uses workers (a subset of PackOptions). */
export interface PackPoolRequest {
  /** Worker count (default: the machine's cores); 1 means this thread. */
  workers?: number;
  compression?: CodecName;
  level?: number;
  /** A dictionary pack runs on this thread (its codec lives here). */
  dictionary?: unknown;
  /** Workers already started: checked to be for this codec and level, and returned. */
  pool?: PackPool;
}

/**
 * The workers a pack uses, one pool for all its streams: those given, else new ones when more
 * than one is asked for. None for dictionary packs nor where the worker module is missing (a
 * single-file bundle): those run on this thread, and the archive is the same either way.
 * Checks the level and the worker count first (usage errors). A pool it starts is the
 * caller's to close (or to hand to `pack`).
 */
export function packPool(opts: PackPoolRequest): PackPool | null {
  const compression: CodecName = opts.compression ?? "lz4";
  const level = opts.level ?? DEFAULT_LEVEL[compression];
  checkLevel(compression, level);
  const workers = opts.pool?.size ?? workerCount(opts.workers);
  if (opts.dictionary || !packWorkersAvailable()) return null;
  if (opts.pool) {
    if (opts.pool.compression !== compression || opts.pool.level !== level) {
      throw new HexzError(
        "usage",
        `the pack's workers were started for ${opts.pool.compression} level ${opts.pool.level}, not ${compression} level ${level}`,
      );
    }
    return opts.pool;
  }
  return workers > 1 ? startPackPool({ workers, compression, level }) : null;
}
