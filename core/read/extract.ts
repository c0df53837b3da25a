/**
 * `extract`: restores one stream bit for bit into a file. Runs of zero blocks become holes
 * (the file is sparse where the original was zero). Output is written to a temporary file and
 * moved into place when complete.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { KIND, STREAMS } from "../format/constants.ts";
import { createAtomicFile, writeAll } from "../io/atomic.ts";
import { type Archive, resolveStream, type StreamRef } from "./archive.ts";

export interface ExtractOptions {
  stream?: StreamRef;
  force?: boolean;
  onProgress?: (done: number, total: number) => void;
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
    let pos = 0;
    let last = 0;
    for await (const b of a.blocks(stream)) {
      if (b.entry.kind === KIND.zero) {
        pos += b.entry.logicalLength;
        await out.file.seek(pos, Deno.SeekMode.Start);
      } else {
        await writeAll(out.file, await a.readBlock(stream, b.index));
        pos += b.entry.logicalLength;
      }
      if (opts.onProgress && pos - last >= 16 * 1024 * 1024) {
        last = pos;
        opts.onProgress(pos, size);
      }
    }
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
