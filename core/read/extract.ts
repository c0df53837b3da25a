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
import { workerCount } from "../workers.ts";
import { createTurns } from "../io/turns.ts";
import { type Archive, resolveStream, type StreamRef } from "./archive.ts";
import { locate } from "./locate.ts";
import { createJobBuilder } from "./extract_job.ts";
import { bigEnoughForWorkers, createJobPool } from "./job_pool.ts";
import { archivePaths } from "./parent.ts";
import { expectArchive, expectOptions, expectString } from "../args.ts";

export interface ExtractOptions {
  stream?: StreamRef;
  force?: boolean;
  onProgress?: (done: number, total: number) => void;
  /**
   * Threads that decode, this one included (default: one per core, started at once for a
   * stream with 8 MiB or more of stored data, else once 8 MiB has been decoded here); 1
   * decodes here alone. Applies to unencrypted archives in local files;
   * others decode here, reading ahead.
   */
  workers?: number;
}

/**
 * Fills `out` (already created) with the stream on `threads` threads, this one included
 * (job_pool.ts): this thread walks the index, leaves zero blocks as holes, and hands runs of
 * blocks to the pool as jobs. Each job is decoded and written straight to its place in the
 * output. Blocks that the job runner cannot reach (dictionaries, parents that are not local
 * files) are decoded here through the archive.
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
  let done = 0, reported = 0;
  const progress = (bytes: number, written: boolean) => {
    done += bytes;
    if (written) out.wrote(bytes);
    if (onProgress && done - reported >= 16 * 1024 * 1024) {
      reported = done;
      onProgress(done, size);
    }
  };
  const pool = createJobPool({ threads, output: out.tempPath, stream: STREAMS[stream], eager });
  const jobs = createJobBuilder();
  const dispatch = async () => {
    const j = jobs.take();
    if (!j) return;
    await pool.submit({ type: "job", meta: j.meta, hashes: j.hashes }, j.bytes, (n) => {
      progress(n, true);
    });
  };
  try {
    pool.fileId(a); // file 0: the archive itself
    let pos = 0;
    for await (const b of a.blocks(stream)) {
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
        await writeAll(out.file, data, out.path);
        progress(len, true);
        continue;
      }
      jobs.add(b, at.entry, pool.fileId(at.archive));
      if (jobs.full) await dispatch();
    }
    await dispatch();
    if (pos !== size) throw new HexzError("corrupt", `blocks add up to ${pos} bytes, not ${size}`);
    await pool.drain();
  } finally {
    await pool.close();
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
  const turn = createTurns();
  for await (const b of a.blocks(stream)) {
    await turn();
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
  expectArchive(a, "extract");
  expectString(output, "extract: output");
  expectOptions(opts, "extract: options");
  const stream = resolveStream(opts.stream ?? "disk");
  const size = a.size(stream);
  if (a.header.streams[stream].blockCount === 0 && stream !== 0) {
    throw new HexzError("not-found", `${a.source.name}: has no ${STREAMS[stream]} stream`);
  }
  const threads = workerCount(opts.workers);
  const out = await createAtomicFile(output, opts.force, await archivePaths(a));
  try {
    if (a.source.path !== undefined && !(a.header.features & FEATURE.encrypted)) {
      const eager = opts.workers !== undefined || bigEnoughForWorkers(a.header.streams[stream]);
      await extractJobs(a, stream, out, threads, eager, opts.onProgress);
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
      if (fill) await writeAll(out.file, buf.subarray(0, fill), output);
      out.wrote(fill);
      fill = 0;
    };
    for await (const [len, data] of blocks) {
      if (data === null) {
        await flush();
        out.file.seekSync(pos + len, Deno.SeekMode.Start);
      } else if (data.length >= buf.length) {
        await flush();
        await writeAll(out.file, data, output);
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
    // Workers write the temporary file by its name; the user knows the output's.
    if (e instanceof HexzError && e.message.includes(out.tempPath)) {
      throw new HexzError(e.code, e.message.replaceAll(out.tempPath, output), { cause: e });
    }
    throw e;
  }
}
