/**
 * `extract`: restores one stream bit for bit into a file. Runs of zero blocks become holes
 * (the file is sparse where the original was zero). Output is written to a temporary file and
 * moved into place when complete.
 *
 * @module
 */
import { HexzError, type HexzErrorCode } from "../errors.ts";
import { FEATURE, KIND, STREAMS } from "../format/constants.ts";
import { createAtomicFile, writeAll } from "../io/atomic.ts";
import { moduleBeside } from "../pack/pipeline.ts";
import { type Archive, resolveStream, type StreamRef } from "./archive.ts";

export interface ExtractOptions {
  stream?: StreamRef;
  force?: boolean;
  onProgress?: (done: number, total: number) => void;
  /**
   * Decode in this many Web Workers (default 1: on this thread). Workers open the archive
   * themselves, so this needs `path`, and applies only to unencrypted archives.
   */
  workers?: number;
  /** The archive's local path, for workers. */
  path?: string;
}

/** Messages of the parallel extract (see extract_worker.ts). */
export interface ExtractInit {
  type: "init";
  path: string;
  stream: number;
}
export interface ExtractJob {
  type: "job";
  seq: number;
  first: number;
  count: number;
}
export interface ExtractResult {
  type: "result";
  seq: number;
  /** Per block: its length, negated for a zero block (not in `data`). */
  lengths: number[];
  data: ArrayBuffer;
}
export interface ExtractWorkerError {
  type: "error";
  message: string;
  code?: HexzErrorCode;
}

/** Blocks per job: a few MiB of output at common block sizes. */
const JOB_BLOCKS = 64;

/**
 * The stream's blocks decoded in workers, in order: each item is a block's length and its
 * bytes, or null for a zero block.
 */
async function* decodeInWorkers(
  path: string,
  stream: number,
  blockCount: number,
  n: number,
): AsyncGenerator<[number, Uint8Array | null]> {
  const url = new URL("./extract_worker.ts", import.meta.url).href;
  const workers: Worker[] = [];
  const waiting = new Map<
    number,
    { resolve: (r: ExtractResult) => void; reject: (e: Error) => void }
  >();
  const results = new Map<number, Promise<ExtractResult>>();
  let failure: Error | null = null;
  const fail = (e: Error) => {
    failure = e;
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  };
  try {
    for (let i = 0; i < n; i++) {
      const w = new Worker(url, { type: "module" });
      workers.push(w);
      w.onmessage = (ev: MessageEvent<ExtractResult | ExtractWorkerError>) => {
        const m = ev.data;
        if (m.type === "error") return fail(new HexzError(m.code ?? "io", m.message));
        waiting.get(m.seq)?.resolve(m);
        waiting.delete(m.seq);
      };
      w.onerror = (ev) => {
        ev.preventDefault();
        fail(new Error(`extract worker failed: ${ev.message}`));
      };
      w.postMessage({ type: "init", path, stream } satisfies ExtractInit);
    }
    let nextSeq = 0, nextOut = 0;
    const submit = () => {
      const seq = nextSeq++;
      const first = seq * JOB_BLOCKS;
      const p = new Promise<ExtractResult>((resolve, reject) => {
        if (failure) return reject(failure);
        waiting.set(seq, { resolve, reject });
      });
      p.catch(() => {});
      results.set(seq, p);
      const job: ExtractJob = {
        type: "job",
        seq,
        first,
        count: Math.min(JOB_BLOCKS, blockCount - first),
      };
      workers[seq % n].postMessage(job);
    };
    const jobs = Math.ceil(blockCount / JOB_BLOCKS);
    while (nextOut < jobs) {
      while (nextSeq < jobs && nextSeq - nextOut < 3 * n) submit();
      const r = await results.get(nextOut)!;
      results.delete(nextOut++);
      const data = new Uint8Array(r.data);
      let at = 0;
      for (const len of r.lengths) {
        if (len < 0) yield [-len, null];
        else {
          yield [len, data.subarray(at, at + len)];
          at += len;
        }
      }
    }
  } finally {
    for (const w of workers) w.terminate();
  }
}

/** The stream's blocks decoded on this thread, read ahead: as decodeInWorkers. */
async function* decodeHere(
  a: Archive,
  stream: number,
): AsyncGenerator<[number, Uint8Array | null]> {
  // Blocks are fetched and decoded up to AHEAD blocks in advance (reads overlap with decoding).
  const AHEAD = 16;
  const queue: { len: number; data: Promise<Uint8Array> | null }[] = [];
  for await (const b of a.blocks(stream)) {
    const data = b.entry.kind === KIND.zero ? null : a.readBlock(stream, b.index);
    // Failures surface when the block is taken, in order; don't report them twice.
    data?.catch(() => {});
    queue.push({ len: b.entry.logicalLength, data });
    if (queue.length >= AHEAD) {
      const q = queue.shift()!;
      yield [q.len, q.data ? await q.data : null];
    }
  }
  for (const q of queue) yield [q.len, q.data ? await q.data : null];
}

export async function extractStream(
  a: Archive,
  output: string,
  opts: ExtractOptions = {},
): Promise<{ bytes: number }> {
  const stream = resolveStream(opts.stream ?? "disk");
  const size = a.size(stream);
  if (a.header.streams[stream].blockCount === 0 && stream !== 0) {
    throw new HexzError("not-found", `archive has no ${STREAMS[stream]} stream`);
  }
  const out = await createAtomicFile(output, opts.force);
  try {
    const workers = opts.workers ?? 1;
    const parallel = workers > 1 && opts.path !== undefined &&
      moduleBeside(new URL("./extract_worker.ts", import.meta.url)) &&
      !(a.header.features & FEATURE.encrypted) && a.header.streams[stream].blockCount > 0;
    const blocks = parallel
      ? decodeInWorkers(opts.path!, stream, a.header.streams[stream].blockCount, workers)
      : decodeHere(a, stream);
    // Written in large pieces; zero blocks become holes. Blocks that lie back to back in one
    // buffer (a worker's result) are written straight from it; others are gathered first.
    const buf = new Uint8Array(4 * 1024 * 1024);
    let fill = 0;
    let run: Uint8Array | null = null; // a contiguous view not yet written
    let pos = 0;
    let last = 0;
    const flush = async () => {
      if (run) await writeAll(out.file, run);
      if (fill) await writeAll(out.file, buf.subarray(0, fill));
      run = null;
      fill = 0;
    };
    for await (const [len, data] of blocks) {
      if (data === null) {
        await flush();
        out.file.seekSync(pos + len, Deno.SeekMode.Start);
      } else if (
        run && data.buffer === run.buffer && data.byteOffset === run.byteOffset + run.length
      ) {
        run = new Uint8Array(run.buffer, run.byteOffset, run.length + data.length);
      } else if (fill === 0 && (run === null || run.length >= buf.length)) {
        await flush();
        run = data;
      } else {
        if (run) {
          // Gather the short run too, so the order of bytes is kept.
          const r: Uint8Array = run;
          run = null;
          if (fill + r.length > buf.length) await flush();
          if (r.length > buf.length) await writeAll(out.file, r);
          else {
            buf.set(r, fill);
            fill += r.length;
          }
        }
        if (fill + data.length > buf.length) await flush();
        if (data.length > buf.length) await writeAll(out.file, data);
        else {
          buf.set(data, fill);
          fill += data.length;
        }
      }
      pos += len;
      if (opts.onProgress && pos - last >= 16 * 1024 * 1024) {
        last = pos;
        opts.onProgress(pos, size);
      }
    }
    await flush();
    if (pos !== size) throw new HexzError("corrupt", `blocks add up to ${pos} bytes, not ${size}`);
    // A trailing hole needs the size set explicitly.
    await out.file.truncate(size);
    opts.onProgress?.(size, size);
    await out.commit();
    return { bytes: size };
  } catch (e) {
    await out.abort();
    throw e;
  }
}
