/**
 * `extract`: restores one stream bit for bit into a file. Runs of zero blocks become holes
 * (the file is sparse where the original was zero). Output is written to a temporary file and
 * moved into place when complete.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { FEATURE, KIND, STREAMS } from "../format/constants.ts";
import { type AtomicFile, createAtomicFile, writeAll } from "../io/atomic.ts";
import { moduleBeside, workerCount } from "../pack/pipeline.ts";
import { type Archive, resolveStream, type StreamRef } from "./archive.ts";
import { locate } from "./locate.ts";
import { type ExtractRequest, type ExtractWorkerMessage, JOB_FIELDS } from "./extract_job.ts";
import { createJobRunner } from "./extract_run.ts";

export interface ExtractOptions {
  stream?: StreamRef;
  force?: boolean;
  onProgress?: (done: number, total: number) => void;
  /**
   * Threads that decode, this one included (default: one per core, started once the stream
   * has 8 MiB of data); 1 decodes here alone. Applies to unencrypted archives in local files;
   * others decode here, reading ahead.
   */
  workers?: number;
}

/** A job: up to this many blocks, or JOB_BYTES of output, whichever comes first. */
const JOB_BLOCKS = 256;
const JOB_BYTES = 4 * 1024 * 1024;
/**
 * Unless told how many workers to use, extract decodes this much here before starting any:
 * a worker is ready about 60 ms after it is started and waiting for it to close cost a 100 KB
 * extract 40 ms (169 against 128 ms for the whole command, 2026-11-23).
 */
const START_WORKERS_AFTER = 8 * 1024 * 1024;
/** Jobs queued per worker, so none waits for the next. */
const QUEUE = 2;

/**
 * Fills `out` (already created) with the stream on `threads` threads, this one included:
 * this thread walks the index, leaves zero blocks as holes, and sends runs of blocks as jobs
 * to `threads - 1` workers, running a job itself whenever no worker has room (and until they
 * have started; see START_WORKERS_AFTER). Each job is decoded and written straight to its
 * place in the output. Blocks that the job runner cannot reach (dictionaries, parents that
 * are not local files) are decoded here through the archive.
 */
async function extractJobs(
  a: Archive,
  stream: number,
  out: AtomicFile,
  threads: number,
  eager: boolean,
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  const size = a.size(stream);
  // The output has its final size from the start: zero blocks are holes, never written.
  await out.file.truncate(size);
  const url = new URL("./extract_worker.ts", import.meta.url);
  const spawn = moduleBeside(url) ? threads - 1 : 0;
  const workers: Worker[] = [];
  const pending: number[] = [];
  const ready: boolean[] = [];
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const fail = (e: Error) => {
    failure ??= e;
    notify();
  };
  const closed: Promise<void>[] = [];
  let done = 0, reported = 0, started = false;
  const progress = (bytes: number, written: boolean) => {
    done += bytes;
    if (written) out.wrote(bytes);
    if (onProgress && done - reported >= 16 * 1024 * 1024) {
      reported = done;
      onProgress(done, size);
    }
  };
  const files: ExtractRequest[] = [];
  const startWorkers = () => {
    started = true;
    for (let i = 0; i < spawn; i++) {
      const w = new Worker(url.href, { type: "module" });
      workers.push(w);
      pending.push(0);
      ready.push(false);
      closed.push(
        new Promise((resolve) => {
          w.onmessage = (ev: MessageEvent<ExtractWorkerMessage>) => {
            const m = ev.data;
            if (m.type === "ready") ready[i] = true;
            else if (m.type === "done") {
              pending[i]--;
              progress(m.bytes, true);
              notify();
            } else if (m.type === "closed") resolve();
            else {
              fail(new HexzError(m.code ?? "io", m.message));
              resolve(); // a failed worker has closed its files
            }
          };
          w.onerror = (ev) => {
            ev.preventDefault();
            fail(new HexzError("io", `extract worker failed: ${ev.message}`));
            resolve();
          };
        }),
      );
      w.postMessage(
        { type: "init", output: out.tempPath, stream: STREAMS[stream] } satisfies ExtractRequest,
      );
      for (const f of files) w.postMessage(f);
    }
  };
  const here = createJobRunner(out.tempPath, STREAMS[stream]);
  // One turn of the event loop: a message to ourselves takes about 40 µs where setTimeout(0)
  // took 2.3 ms here (timer granularity), which cost tens of milliseconds per extract.
  const channel = new MessageChannel();
  const turn = () =>
    new Promise<void>((r) => {
      channel.port1.onmessage = () => r();
      channel.port2.postMessage(0);
    });
  const fileIds = new Map<Archive, number>();
  const fileId = (archive: Archive) => {
    let id = fileIds.get(archive);
    if (id === undefined) {
      id = fileIds.size;
      fileIds.set(archive, id);
      const msg: ExtractRequest = { type: "file", id, path: archive.source.path! };
      files.push(msg);
      for (const w of workers) w.postMessage(msg);
      here.addFile(id, msg.path);
    }
    return id;
  };
  const meta = new Float64Array(JOB_BLOCKS * JOB_FIELDS);
  const hashes = new Uint8Array(JOB_BLOCKS * 32);
  let count = 0, bytes = 0, queued = 0;
  const dispatch = async () => {
    if (count === 0) return;
    if (failure) throw failure;
    const m = meta.subarray(0, count * JOB_FIELDS), h = hashes.subarray(0, count * 32);
    let best = -1;
    for (let i = 0; i < workers.length; i++) {
      if (ready[i] && pending[i] < QUEUE && (best < 0 || pending[i] < pending[best])) best = i;
    }
    if (best < 0) {
      progress(here.run({ type: "job", meta: m, hashes: h }), true);
      // Let the workers' messages in before the next job.
      if (workers.length) await turn();
    } else {
      const jm = m.slice(), jh = h.slice();
      const job: ExtractRequest = { type: "job", meta: jm, hashes: jh };
      pending[best]++;
      workers[best].postMessage(job, [jm.buffer, jh.buffer]);
    }
    queued += bytes;
    if (!started && queued >= START_WORKERS_AFTER) startWorkers();
    count = bytes = 0;
  };
  try {
    fileId(a); // file 0: the archive itself
    if (eager) startWorkers();
    let pos = 0;
    for await (const b of a.blocks(stream)) {
      if (failure) throw failure;
      const len = b.entry.logicalLength;
      if (b.offset !== pos) {
        throw new HexzError("corrupt", `${STREAMS[stream]} block ${b.index} is out of place`);
      }
      pos += len;
      if (b.entry.kind === KIND.zero) {
        progress(len, false);
        continue;
      }
      const at = await locate(a, b);
      if (!at) {
        // Here, through the archive: dictionaries, blocks in a remote parent, and anything
        // odd, which the archive reports in its own words.
        const data = await a.readBlock(stream, b.index);
        out.file.seekSync(b.offset, Deno.SeekMode.Start);
        await writeAll(out.file, data);
        progress(len, true);
        continue;
      }
      const f = count * JOB_FIELDS, e = at.entry;
      meta[f] = b.index;
      meta[f + 1] = fileId(at.archive);
      meta[f + 2] = e.location;
      meta[f + 3] = e.storedLength;
      meta[f + 4] = len;
      meta[f + 5] = e.codec;
      meta[f + 6] = b.offset;
      hashes.set(e.hash, count * 32);
      count++;
      bytes += len;
      if (count === JOB_BLOCKS || bytes >= JOB_BYTES) await dispatch();
    }
    await dispatch();
    if (pos !== size) throw new HexzError("corrupt", `blocks add up to ${pos} bytes, not ${size}`);
    while (!failure && pending.some((p) => p > 0)) await new Promise<void>((r) => wake = r);
    if (failure) throw failure;
  } finally {
    channel.port1.close();
    here.close();
    for (const w of workers) w.postMessage({ type: "close" } satisfies ExtractRequest);
    await Promise.all(closed);
    for (const w of workers) w.terminate();
  }
  onProgress?.(size, size);
}

/** The stream's blocks decoded on this thread, read ahead: each block's length and bytes (null
 * for a zero block). */
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
  const threads = workerCount(opts.workers);
  const out = await createAtomicFile(output, opts.force);
  try {
    if (a.source.path !== undefined && !(a.header.features & FEATURE.encrypted)) {
      await extractJobs(a, stream, out, threads, opts.workers !== undefined, opts.onProgress);
      await out.commit();
      return { bytes: size };
    }
    const blocks = decodeHere(a, stream);
    // Written in large pieces; zero blocks become holes.
    const buf = new Uint8Array(4 * 1024 * 1024);
    let fill = 0;
    let pos = 0;
    let last = 0;
    const flush = async () => {
      if (fill) await writeAll(out.file, buf.subarray(0, fill));
      out.wrote(fill);
      fill = 0;
    };
    for await (const [len, data] of blocks) {
      if (data === null) {
        await flush();
        out.file.seekSync(pos + len, Deno.SeekMode.Start);
      } else if (data.length >= buf.length) {
        await flush();
        await writeAll(out.file, data);
        out.wrote(data.length);
      } else {
        if (fill + data.length > buf.length) await flush();
        buf.set(data, fill);
        fill += data.length;
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
