/**
 * Running extract jobs (see extract_job.ts): each block is read, decoded and verified in
 * WebAssembly memory by the block kernel, and every stretch of blocks that is contiguous in
 * the output goes out in one positioned write (or, for the files of a directory archive, each
 * piece to its file). Workers run jobs; so does the main thread while its workers start.
 *
 * @module
 */
import { closeSync, constants, openSync } from "node:fs";
import { writeAllAt } from "../io/atomic.ts";
import { HexzError, osReason } from "../errors.ts";
import { createBlockKernel } from "./block_kernel.ts";
import { type ExtractJob, JOB_FIELDS, PIECE_FIELDS } from "./extract_job.ts";

export interface JobRunner {
  /** Names an archive file that jobs refer to by `id` (0 is the archive itself). */
  addFile(id: number, path: string): void;
  /** Decodes, verifies and writes the job's blocks; returns the bytes written. */
  run(job: ExtractJob): number;
  /** Closes every file it opened. */
  close(): void;
}

/** A runner writing into `output` (opened here; null when every job has pieces); `stream`
 * names blocks in errors. */
export function createJobRunner(output: string | null, stream: string): JobRunner {
  const kernel = createBlockKernel();
  let out = output === null ? -1 : openSync(output, "r+");
  const paths: string[] = [];
  const fds: number[] = [];

  const fileFd = (id: number): number => {
    if (fds[id] === undefined) {
      try {
        fds[id] = openSync(paths[id], "r");
      } catch (e) {
        throw new HexzError("io", `${paths[id]}: ${osReason(e)}`);
      }
    }
    return fds[id];
  };
  const put = (fd: number, from: number, length: number, position: number, what: string) =>
    writeAllAt(fd, kernel.bytes(), from, length, position, what);
  const writeOut = (from: number, length: number, position: number) => {
    if (out < 0) throw new Error("a job without pieces, and no output");
    put(out, from, length, position, output!);
  };

  const decode = (job: ExtractJob, i: number, at: number) => {
    const m = job.meta, f = i * JOB_FIELDS;
    const index = m[f], file = m[f + 1], position = m[f + 6];
    kernel.decode({
      fd: fileFd(file),
      location: m[f + 2],
      storedLength: m[f + 3],
      logicalLength: m[f + 4],
      codec: m[f + 5],
      hash: job.hashes.subarray(32 * i, 32 * i + 32),
      what: `${paths[0]}: ${job.stream ?? stream} block ${index} (offset ${position})` +
        (file === 0 ? "" : ` in parent ${paths[file]}`),
    }, at);
  };
  /** Decodes every block of the job back to back, then writes its pieces. */
  const writePieces = (job: ExtractJob, outStart: number): number => {
    const m = job.meta, p = job.pieces!, count = m.length / JOB_FIELDS;
    const starts: number[] = [];
    let at = outStart;
    for (let i = 0; i < count; i++) {
      starts.push(at);
      decode(job, i, at);
      at += m[i * JOB_FIELDS + 4];
    }
    const targets = job.paths ?? [];
    const fds = new Map<number, number>();
    let written = 0;
    try {
      for (let k = 0; k < p.length; k += PIECE_FIELDS) {
        const block = p[k], file = p[k + 1], length = p[k + 4];
        if (
          !(block >= 0 && block < count) || p[k + 3] + length > m[block * JOB_FIELDS + 4] ||
          targets[file] === undefined
        ) throw new RangeError("extract job: a piece outside its block");
        let fd = fds.get(file);
        if (fd === undefined) {
          try {
            fd = openSync(targets[file], constants.O_WRONLY | constants.O_NOFOLLOW);
          } catch (e) {
            throw new HexzError("io", `${targets[file]}: cannot write: ${osReason(e)}`);
          }
          fds.set(file, fd);
        }
        put(fd, starts[block] + p[k + 3], length, p[k + 2], targets[file]);
        written += length;
      }
    } finally {
      for (const fd of fds.values()) closeSync(fd);
    }
    return written;
  };
  return {
    addFile(id, path) {
      paths[id] = path;
    },
    run(job) {
      const m = job.meta, count = m.length / JOB_FIELDS;
      let maxStored = 0, total = 0;
      for (let i = 0; i < count; i++) {
        const f = i * JOB_FIELDS;
        maxStored = Math.max(maxStored, m[f + 3]);
        total += m[f + 4];
      }
      const outStart = kernel.reserve(maxStored, total);
      if (job.pieces) return writePieces(job, outStart);
      // Blocks land back to back; each stretch that is contiguous in the output is one write.
      let at = outStart, runAt = outStart, runPos = -1, runLen = 0;
      for (let i = 0; i < count; i++) {
        const f = i * JOB_FIELDS;
        const logicalLength = m[f + 4], position = m[f + 6];
        decode(job, i, at);
        if (runLen > 0 && position !== runPos + runLen) {
          writeOut(runAt, runLen, runPos);
          runLen = 0;
        }
        if (runLen === 0) {
          runAt = at;
          runPos = position;
        }
        runLen += logicalLength;
        at += logicalLength;
      }
      if (runLen > 0) writeOut(runAt, runLen, runPos);
      return total;
    },
    close() {
      for (const fd of [out, ...fds]) {
        try {
          if (fd !== undefined && fd >= 0) closeSync(fd);
        } catch { /* closing is best effort */ }
      }
      out = -1;
      fds.length = 0;
    },
  };
}
