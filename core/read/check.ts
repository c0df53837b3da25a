/**
 * `check`: verifies every checksum and hash in an archive: header (on open), master index,
 * every page, every section and every block (decompressed and hashed). The first bad record
 * is named in the error.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { FEATURE, KIND, STREAMS } from "../format/constants.ts";
import { workerCount } from "../workers.ts";
import { createTurns } from "../io/turns.ts";
import type { Archive } from "./archive.ts";
import { createJobBuilder } from "./extract_job.ts";
import { bigEnoughForWorkers, createJobPool } from "./job_pool.ts";
import { locate } from "./locate.ts";
import { expectArchive, expectOptions } from "../args.ts";

export interface CheckReport {
  pages: number;
  blocks: number;
  /** Logical bytes verified. */
  bytes: number;
  sections: number;
}

export interface CheckOptions {
  onProgress?: (done: number, total: number) => void;
  /**
   * Threads that decode and verify blocks, this one included (unencrypted archives in local
   * files; default: one per core, started once 8 MiB has been verified here).
   */
  workers?: number;
}

/** Throws HexzError("corrupt") naming the first bad record; returns counts when all is well. */
export async function checkArchive(a: Archive, opts: CheckOptions = {}): Promise<CheckReport> {
  expectArchive(a, "check");
  expectOptions(opts, "check: options");
  const report: CheckReport = { pages: 0, blocks: 0, bytes: 0, sections: 0 };
  for (const kind of ["dictionary", "metadata", "fileTable"] as const) {
    if (await a.section(kind)) report.sections++;
  }
  if (a.header.metadata.length) await a.metadata();
  for (let i = 0; i < a.pages.length; i++) {
    await a.page(i);
    report.pages++;
  }
  const total = a.header.streams.reduce((n, s) => n + s.logicalSize, 0);
  let done = 0, last = 0;
  const progress = (bytes: number) => {
    done += bytes;
    if (opts.onProgress && done - last >= 16 * 1024 * 1024) {
      last = done;
      opts.onProgress(done, total);
    }
  };
  const counted = { blocks: report.blocks, bytes: report.bytes };
  if (a.source.path !== undefined && !(a.header.features & FEATURE.encrypted)) {
    try {
      await checkBlocksOnThreads(a, report, progress, opts.workers);
    } catch (e) {
      if (!(e instanceof HexzError)) throw e;
      // Several threads may meet damage out of order: the serial pass below names the first
      // bad block, as a check always does (and if it finds none, the error stands).
      Object.assign(report, counted);
      done = last = 0;
      await checkBlocksHere(a, report, progress);
      throw e;
    }
  } else await checkBlocksHere(a, report, progress);
  opts.onProgress?.(report.bytes, total);
  return report;
}

/** Every block of every stream read, decoded and verified through the archive, in order. */
async function checkBlocksHere(a: Archive, report: CheckReport, progress: (n: number) => void) {
  const turn = createTurns();
  for (let s = 0; s < STREAMS.length; s++) {
    for await (const b of a.blocks(s)) {
      // Zero blocks hold no bytes: their entry was validated with the page.
      if (b.entry.kind !== KIND.zero) await a.readBlock(s, b.index);
      report.blocks++;
      report.bytes += b.entry.logicalLength;
      progress(b.entry.logicalLength);
      await turn();
    }
  }
}

/**
 * The same on the threads of a job pool (job_pool.ts): jobs with no pieces, so their blocks
 * are decoded and verified by the block kernel and written nowhere. Blocks the kernel cannot
 * decode are read through the archive here.
 */
async function checkBlocksOnThreads(
  a: Archive,
  report: CheckReport,
  progress: (n: number) => void,
  workers: number | undefined,
) {
  const pool = createJobPool({
    threads: workerCount(workers),
    output: null,
    stream: STREAMS[0],
    eager: workers !== undefined ||
      bigEnoughForWorkers({
        storedBytes: a.header.streams.reduce((n, s) => n + s.storedBytes, 0),
        parentBytes: a.header.streams.reduce((n, s) => n + s.parentBytes, 0),
      }),
  });
  const jobs = createJobBuilder();
  const none = new Float64Array(0);
  let stream = 0;
  const dispatch = async () => {
    const j = jobs.take();
    if (!j) return;
    const job = { type: "job", meta: j.meta, hashes: j.hashes, pieces: none } as const;
    await pool.submit({ ...job, stream: STREAMS[stream] }, j.bytes, () => progress(j.bytes));
  };
  try {
    pool.fileId(a);
    for (stream = 0; stream < STREAMS.length; stream++) {
      for await (const b of a.blocks(stream)) {
        const len = b.entry.logicalLength;
        report.blocks++;
        report.bytes += len;
        if (b.entry.kind === KIND.zero) {
          progress(len);
          continue;
        }
        const found = await locate(a, b);
        if (!found) {
          await a.readBlock(stream, b.index);
          progress(len);
          continue;
        }
        jobs.add(b, found.entry, pool.fileId(found.archive));
        if (jobs.full) await dispatch();
      }
      await dispatch(); // a job holds blocks of one stream
    }
    await pool.drain();
  } finally {
    await pool.close();
  }
}
