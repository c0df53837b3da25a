/**
 * An extract worker: runs jobs of blocks that the main thread has already located (its index
 * walk follows thin archives to the file that holds each block), writing them straight from
 * WebAssembly memory into the output at their offsets. It opens no archive of its own, which
 * keeps its start-up to node:fs, node:zlib and the core module. See extract_job.ts.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { ExtractRequest, ExtractWorkerMessage } from "./extract_job.ts";

const early: MessageEvent<ExtractRequest>[] = [];
let handle: ((ev: MessageEvent<ExtractRequest>) => void) | null = null;
self.onmessage = (ev: MessageEvent<ExtractRequest>) => handle ? handle(ev) : early.push(ev);

const { createJobRunner } = await import("./extract_run.ts");
const { HexzError } = await import("../errors.ts");

let runner: ReturnType<typeof createJobRunner> | null = null;
let failed = false;
const post = (m: ExtractWorkerMessage) => self.postMessage(m);

handle = (ev) => {
  const m = ev.data;
  if (m.type === "close") {
    runner?.close();
    runner = null;
    return post({ type: "closed" });
  }
  if (failed) return;
  try {
    if (m.type === "init") {
      runner = createJobRunner(m.output, m.stream);
      post({ type: "ready" });
    } else if (m.type === "file") runner!.addFile(m.id, m.path);
    else post({ type: "done", bytes: runner!.run(m) });
  } catch (e) {
    failed = true;
    runner?.close();
    runner = null;
    post({
      type: "error",
      message: (e as Error).message,
      code: e instanceof HexzError ? e.code : undefined,
    });
  }
};
for (const ev of early.splice(0)) handle(ev);
