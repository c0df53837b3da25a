/**
 * A pack worker: receives batches of blocks (or file ranges it reads itself), returns for each
 * block its zero flag, BLAKE3 hash and compressed payload (see pipeline.ts for the protocol).
 * Buffers travel as transfers.
 *
 * The message handler is installed before anything else is loaded: modules with top-level
 * await delay evaluation, and messages that arrive before a handler exists are dropped.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { BlockCompressor } from "../codec/codec.ts";
import type {
  RangePart,
  WorkerBatch,
  WorkerError,
  WorkerInit,
  WorkerRange,
  WorkerResult,
} from "./pipeline.ts";

type Msg = WorkerInit | WorkerBatch | WorkerRange;
const early: MessageEvent<Msg>[] = [];
let handle: ((ev: MessageEvent<Msg>) => void) | null = null;
self.onmessage = (ev: MessageEvent<Msg>) => handle ? handle(ev) : early.push(ev);

const { createCompressor } = await import("../codec/codec.ts");
const { processBlock } = await import("./pipeline.ts");
const { HexzError } = await import("../errors.ts");
const { closeSync, fstatSync, openSync } = await import("node:fs");
const { bytesKey } = await import("../format/bytes.ts");
const { createRangeKernel, rangeKernelHandles, readParts } = await import("./range_kernel.ts");
let rangeKernel: ReturnType<typeof createRangeKernel> | null = null;
let compressor: BlockCompressor | null = null;
let buffer = new Uint8Array(0);

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

/** Opens the parts' files, runs `fn` with their descriptors, closes them. */
function withParts<T>(parts: RangePart[], fn: (fds: number[]) => T): T {
  const fds: number[] = [];
  try {
    for (const p of parts) {
      try {
        fds.push(openSync(p.path, "r"));
      } catch (e) {
        throw new HexzError("io", `${p.path}: ${(e as Error).message}`);
      }
    }
    const r = fn(fds);
    // A file that is not the size it was listed with changed while being packed.
    parts.forEach((p, i) => {
      if (p.size === undefined) return;
      const now = fstatSync(fds[i]).size;
      if (now !== p.size) {
        throw new HexzError(
          "io",
          `${p.path}: changed while being packed (${p.size} -> ${now} bytes)`,
        );
      }
    });
    return r;
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

handle = (ev) => {
  try {
    const m = ev.data;
    if (m.type === "init") {
      compressor = createCompressor(m.compression, m.level);
      if (rangeKernelHandles(m.compression)) {
        rangeKernel = createRangeKernel(m.compression, m.level, firstTime);
      }
      return;
    }
    if (m.type === "range" && rangeKernel) {
      const kernel = rangeKernel;
      const r = withParts(m.parts, (fds) => kernel(m.parts, fds, m.lengths));
      const res: WorkerResult = { type: "result", seq: m.seq, lengths: m.lengths, ...r };
      self.postMessage(res, [r.hashes, r.payloads]);
      return;
    }
    if (!compressor) throw new Error("batch before init");
    const data = m.type === "range"
      ? withParts(m.parts, (fds) => {
        const total = m.parts.reduce((a, p) => a + p.length, 0);
        if (buffer.length < total) buffer = new Uint8Array(total);
        return buffer.subarray(0, readParts(m.parts, fds, buffer, 0));
      })
      : new Uint8Array(m.data);
    const n = m.lengths.length;
    const hashes = new Uint8Array(32 * n);
    const codecs: number[] = new Array(n);
    const payloadLengths: number[] = new Array(n);
    const parts: Uint8Array[] = [];
    let total = 0;
    let off = 0;
    for (let i = 0; i < n; i++) {
      if (m.lengths[i] < 0) {
        codecs[i] = -1;
        payloadLengths[i] = 0;
        continue;
      }
      const block = data.subarray(off, off + m.lengths[i]);
      off += m.lengths[i];
      const p = processBlock(block, compressor, firstTime);
      if (p.zero) {
        codecs[i] = -1;
        payloadLengths[i] = 0;
        continue;
      }
      hashes.set(p.hash!, 32 * i);
      if (!p.payload) {
        codecs[i] = -2; // a repeat: hash only
        payloadLengths[i] = 0;
        continue;
      }
      codecs[i] = p.codec;
      // The compressor's output buffer is reused on the next call: copy it out now.
      parts.push(p.payload!.slice());
      payloadLengths[i] = p.payload!.length;
      total += p.payload!.length;
    }
    const payloads = new Uint8Array(total);
    let at = 0;
    for (const part of parts) {
      payloads.set(part, at);
      at += part.length;
    }
    const res: WorkerResult = {
      type: "result",
      seq: m.seq,
      lengths: m.lengths,
      codecs,
      payloadLengths,
      hashes: hashes.buffer,
      payloads: payloads.buffer,
    };
    self.postMessage(res, [hashes.buffer, payloads.buffer]);
  } catch (e) {
    const err: WorkerError = {
      type: "error",
      message: (e as Error).message,
      code: e instanceof HexzError ? e.code : undefined,
    };
    self.postMessage(err);
  }
};
for (const ev of early.splice(0)) handle(ev);
