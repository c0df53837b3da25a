/**
 * The threads that run extract jobs (extract_job.ts): this one and up to `threads - 1`
 * workers. A job goes to the ready worker with the fewest queued (at most QUEUE each), or runs
 * here when none has room (and until they have started), so this thread never waits idle
 * while there is work. Each job's `done` callback runs once its writes are complete.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { moduleBeside } from "../workers.ts";
import { createTurns } from "../io/turns.ts";
import type { Archive } from "./archive.ts";
import type { ExtractJob, ExtractRequest, ExtractWorkerMessage } from "./extract_job.ts";
import { createJobRunner } from "./extract_run.ts";

/**
 * Unless `eager`, this many bytes of jobs run here before any worker starts: a worker is
 * ready about 60 ms after it is started and waiting for it to close cost a 100 KB extract 40
 * ms (169 against 128 ms for the whole command, 2026-11-23).
 */
export const START_WORKERS_AFTER = 8 * 1024 * 1024;
/**
 * Whether a stream holds so much data that workers should start at once rather than after
 * START_WORKERS_AFTER: its stored bytes (compressed, so fewer than it decodes to) and the
 * bytes its parents hold for it, from the header.
 */
export function bigEnoughForWorkers(s: { storedBytes: number; parentBytes: number }): boolean {
  return s.storedBytes + s.parentBytes >= START_WORKERS_AFTER;
}

/** Jobs queued per worker, so none waits for the next. */
const QUEUE = 2;

export interface JobPoolOptions {
  /** Threads that run jobs, this one included. */
  threads: number;
  /** The file that jobs without pieces write into (already created), or null. */
  output: string | null;
  /** Names blocks in errors ("disk"). */
  stream: string;
  /** Start the workers now instead of after START_WORKERS_AFTER bytes (when asked for, or
   * when the header says there is much to do: `bigEnoughForWorkers`). */
  eager: boolean;
}

export interface JobPool {
  /** The id jobs use for an archive's file (0 for the first one registered). */
  fileId(archive: Archive): number;
  /** Runs `job` (its arrays may be reused once this returns) here or on a worker; `done`
   * gets the bytes it wrote once they are written. Throws the pool's first failure. */
  submit(job: ExtractJob, bytes: number, done: (written: number) => void): Promise<void>;
  /** Waits until every submitted job is done; throws the first failure. */
  drain(): Promise<void>;
  /** Stops the workers once they have closed their files; closes this thread's files. */
  close(): Promise<void>;
}

export function createJobPool(opts: JobPoolOptions): JobPool {
  const url = new URL("./extract_worker.ts", import.meta.url);
  const spawn = moduleBeside(url) ? opts.threads - 1 : 0;
  const workers: Worker[] = [];
  /** Per worker, the `done` callbacks of its jobs, oldest first. */
  const queued: ((written: number) => void)[][] = [];
  const ready: boolean[] = [];
  const closed: Promise<void>[] = [];
  const files: ExtractRequest[] = [];
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
  let started = false, submitted = 0;
  const start = () => {
    started = true;
    for (let i = 0; i < spawn; i++) {
      const w = new Worker(url.href, { type: "module" });
      workers.push(w);
      queued.push([]);
      ready.push(false);
      closed.push(
        new Promise((resolve) => {
          w.onmessage = (ev: MessageEvent<ExtractWorkerMessage>) => {
            const m = ev.data;
            if (m.type === "ready") ready[i] = true;
            else if (m.type === "done") {
              queued[i].shift()?.(m.bytes);
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
        { type: "init", output: opts.output, stream: opts.stream } satisfies ExtractRequest,
      );
      for (const f of files) w.postMessage(f);
    }
  };
  const here = createJobRunner(opts.output, opts.stream);
  // One turn of the event loop: a message to ourselves takes about 40 µs where setTimeout(0)
  // took 2.3 ms here (timer granularity), which cost tens of milliseconds per extract.
  const channel = new MessageChannel();
  const turn = () =>
    new Promise<void>((r) => {
      channel.port1.onmessage = () => r();
      channel.port2.postMessage(0);
    });
  const due = createTurns();
  const fileIds = new Map<Archive, number>();
  if (opts.eager) start();
  return {
    fileId(archive) {
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
    },
    async submit(job, bytes, done) {
      if (failure) throw failure;
      let best = -1;
      for (let i = 0; i < workers.length; i++) {
        const n = queued[i].length;
        if (ready[i] && n < QUEUE && (best < 0 || n < queued[best].length)) best = i;
      }
      if (best < 0) {
        done(here.run(job));
        // Let the workers' messages in before the next job; alone, let signals in now and
        // then.
        if (workers.length) await turn();
        else await due();
      } else {
        const meta = job.meta.slice(), hashes = job.hashes.slice(), pieces = job.pieces?.slice();
        const transfer = [meta.buffer, hashes.buffer, ...(pieces ? [pieces.buffer] : [])];
        queued[best].push(done);
        const { paths, stream } = job;
        workers[best].postMessage({ type: "job", meta, hashes, pieces, paths, stream }, transfer);
      }
      submitted += bytes;
      if (!started && submitted >= START_WORKERS_AFTER) start();
    },
    async drain() {
      while (!failure && queued.some((q) => q.length > 0)) {
        await new Promise<void>((r) => wake = r);
      }
      if (failure) throw failure;
    },
    async close() {
      channel.port1.close();
      here.close();
      for (const w of workers) w.postMessage({ type: "close" } satisfies ExtractRequest);
      await Promise.all(closed);
      for (const w of workers) w.terminate();
    },
  };
}
