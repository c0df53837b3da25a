/**
 * An extract worker: opens the archive itself (a local file) and decodes ranges of blocks —
 * read, decompress, verify — returning the bytes of the non-zero ones as a transferred buffer.
 * See extract.ts for the protocol.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { Archive } from "./archive.ts";
import type { ExtractInit, ExtractJob, ExtractResult, ExtractWorkerError } from "./extract.ts";

type Msg = ExtractInit | ExtractJob;
const early: MessageEvent<Msg>[] = [];
let handle: ((ev: MessageEvent<Msg>) => void) | null = null;
self.onmessage = (ev: MessageEvent<Msg>) => handle ? handle(ev) : early.push(ev);

const { openArchive } = await import("./archive.ts");
const { parentResolver } = await import("./parent.ts");
const { fileSource } = await import("../io/source.ts");
const { createZstdDictCodec } = await import("../codec/zstd_dict.ts");
const { HexzError } = await import("../errors.ts");
const { KIND } = await import("../format/constants.ts");
const { createBlockKernel } = await import("./block_kernel.ts");
const { openSync } = await import("node:fs");

let archive: Promise<Archive> | null = null;
let kernel: ReturnType<typeof createBlockKernel> | null = null;
let stream = 0;
// Jobs run one at a time, in arrival order.
let queue: Promise<void> = Promise.resolve();

async function run(job: ExtractJob): Promise<void> {
  const a = await archive!;
  const infos = [];
  const lengths: number[] = [];
  let total = 0;
  for (let i = job.first; i < job.first + job.count; i++) {
    const b = await a.block(stream, i);
    infos.push(b);
    if (b.entry.kind === KIND.zero) lengths.push(-b.entry.logicalLength);
    else {
      lengths.push(b.entry.logicalLength);
      total += b.entry.logicalLength;
    }
  }
  // Every block is decoded straight into its place in the result.
  const out = new Uint8Array(total);
  let at = 0;
  for (const b of infos) {
    if (b.entry.kind === KIND.zero) continue;
    const dst = out.subarray(at, at + b.entry.logicalLength);
    if (!kernel!(b, dst)) dst.set(await a.readBlock(stream, b.index));
    at += b.entry.logicalLength;
  }
  const res: ExtractResult = { type: "result", seq: job.seq, lengths, data: out.buffer };
  self.postMessage(res, [out.buffer]);
}

handle = (ev) => {
  const m = ev.data;
  if (m.type === "init") {
    stream = m.stream;
    // Closed with the worker (extract terminates its workers when done).
    kernel = createBlockKernel(openSync(m.path, "r"));
    // Decoded blocks are used once: no need for a big cache.
    const opts = { cacheBytes: 4 * 1024 * 1024, loadDictionary: createZstdDictCodec };
    archive = openArchive(m.path, {
      ...opts,
      resolveParent: parentResolver(fileSource, opts),
    });
    archive.catch(() => {});
    return;
  }
  queue = queue.then(() => run(m)).catch((e) => {
    const err: ExtractWorkerError = {
      type: "error",
      message: (e as Error).message,
      code: e instanceof HexzError ? e.code : undefined,
    };
    self.postMessage(err);
  });
};
for (const ev of early.splice(0)) handle(ev);
