/**
 * Writing the files of a directory archive block by block: the disk stream is walked once in
 * order, each block that some file needs is decoded once (by the block kernel, into
 * WebAssembly memory, verified against its BLAKE3, on one of the threads of a job pool) and
 * every file it overlaps gets its piece in one positioned write. Zero blocks are never decoded
 * or written: the files are created at their full size, so those ranges are holes.
 * Extracting a tree this way allocates nothing per block, where reading each file through
 * `Archive.read` decoded into and copied between JavaScript buffers (on the v1 root file
 * system, 206 MiB in 5,329 files, a third of the extract's CPU was the garbage collector and
 * page faults of those buffers).
 *
 * @module
 */
import { closeSync, ftruncateSync } from "node:fs";
import { writeAllAt } from "../io/atomic.ts";
import { HexzError } from "../errors.ts";
import { KIND } from "../format/constants.ts";
import type { FileEntry } from "../format/filetable.ts";
import type { Archive } from "./archive.ts";
import { locate } from "./locate.ts";
import { bigEnoughForWorkers, createJobPool } from "./job_pool.ts";
import { createJobBuilder } from "./extract_job.ts";
import { workerCount } from "../workers.ts";

export interface FileSink {
  /** Creates the file and returns where it is and a descriptor open for writing. Other
   * threads open it by that path (never following a symbolic link) to write their pieces. */
  create(e: FileEntry): { path: string; fd: number };
  /** Called once the file's last byte is written; the sink closes `fd`. */
  finish(e: FileEntry, fd: number): void;
}

export interface FileBlocksOptions {
  /** Threads that decode and write, this one included (default: one per core, started once
   * 8 MiB of data has been decoded here). */
  workers?: number;
}

/** A file being written: where it is, its descriptor here, and jobs with pieces of it not
 * yet done. */
interface Writing {
  e: FileEntry;
  place: string;
  fd: number;
  jobs: number;
  /** The walk has passed its last byte. */
  ended: boolean;
}

/**
 * Writes the contents of the regular files `files` (entries of `a`'s file table) through
 * `sink`. Files are created when the walk reaches their first byte and finished once their
 * last piece is written; blocks go to the threads of a job pool (job_pool.ts) as jobs whose
 * pieces name the files by path. A failure leaves the files written so far (the caller
 * reports it). `a` must be a local file (`a.source.path`); blocks the kernel cannot decode
 * (dictionaries, encrypted blocks, parents that are not local files) are read through the
 * archive and written here.
 */
export async function writeFilesByBlock(
  a: Archive,
  files: readonly FileEntry[],
  sink: FileSink,
  opts: FileBlocksOptions = {},
): Promise<void> {
  const pool = createJobPool({
    threads: workerCount(opts.workers),
    output: null,
    stream: "disk",
    eager: opts.workers !== undefined || bigEnoughForWorkers(a.header.streams[0]),
  });
  const writing = new Set<Writing>();
  const finishIfDone = (w: Writing) => {
    if (!w.ended || w.jobs > 0 || !writing.has(w)) return;
    writing.delete(w);
    sink.finish(w.e, w.fd);
  };
  const create = (e: FileEntry): Writing => {
    const { path: place, fd } = sink.create(e);
    const w: Writing = { e, place, fd, jobs: 0, ended: false };
    writing.add(w);
    try {
      ftruncateSync(fd, e.size); // what no block writes (zero blocks) reads as zeros
    } catch (err) {
      throw new HexzError("io", `${e.path}: cannot write: ${(err as Error).message}`);
    }
    return w;
  };
  // The job being gathered.
  const jobs = createJobBuilder();
  const pieces: number[] = [];
  /** The files of the job, by their place in its paths. */
  const inJob = new Map<Writing, number>();
  const dispatch = async () => {
    const j = jobs.take();
    if (!j) return;
    const touched = [...inJob.keys()];
    inJob.clear();
    const job = {
      type: "job" as const,
      meta: j.meta,
      hashes: j.hashes,
      pieces: Float64Array.from(pieces),
      paths: touched.map((w) => w.place),
    };
    pieces.length = 0;
    await pool.submit(job, j.bytes, () => {
      for (const w of touched) {
        w.jobs--;
        finishIfDone(w);
      }
    });
  };
  const active: Writing[] = [];
  try {
    const sorted: FileEntry[] = [];
    for (const e of files) {
      if (e.size > 0) sorted.push(e);
      else {
        const w = create(e);
        w.ended = true;
        finishIfDone(w);
      }
    }
    sorted.sort((x, y) => x.offset - y.offset);
    pool.fileId(a); // file 0: the archive itself
    let next = 0;
    for await (const b of a.blocks("disk")) {
      if (next === sorted.length && active.length === 0) break;
      const start = b.offset, len = b.entry.logicalLength, end = start + len;
      // Blocks come in order from offset 0, so a file starting before `end` overlaps this one.
      while (next < sorted.length && sorted[next].offset < end) active.push(create(sorted[next++]));
      if (active.length === 0) continue;
      if (b.entry.kind !== KIND.zero) {
        const found = await locate(a, b);
        if (found) {
          const block = jobs.add(b, found.entry, pool.fileId(found.archive));
          for (const w of active) {
            const from = Math.max(start, w.e.offset), to = Math.min(end, w.e.offset + w.e.size);
            let file = inJob.get(w);
            if (file === undefined) {
              file = inJob.size;
              inJob.set(w, file);
              w.jobs++;
            }
            pieces.push(block, file, from - w.e.offset, from - start, to - from);
          }
        } else {
          const data = await a.readBlock("disk", b.index);
          for (const w of active) {
            const from = Math.max(start, w.e.offset), to = Math.min(end, w.e.offset + w.e.size);
            writeAllAt(w.fd, data, from - start, to - from, from - w.e.offset, w.e.path);
          }
        }
      }
      for (let i = 0; i < active.length;) {
        const w = active[i];
        if (w.e.offset + w.e.size <= end) {
          active.splice(i, 1);
          w.ended = true;
          finishIfDone(w);
        } else i++;
      }
      if (jobs.full) await dispatch();
    }
    await dispatch();
    if (next < sorted.length || active.length) {
      const e = active[0]?.e ?? sorted[next];
      throw new HexzError("corrupt", `${e.path}: extends past the end of the disk stream`);
    }
    await pool.drain();
  } finally {
    // Every worker has written all it was sent once the pool is closed.
    await pool.close();
    for (const w of writing) closeSync(w.fd);
  }
}
