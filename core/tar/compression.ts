/**
 * The compression around a tar: found from the first bytes of the input (gzip 1f 8b, zstd
 * 28 b5 2f fd), never from its name alone, and undone as the input is read; and put around a
 * tar as it is written. gzip is read through the runtime's DecompressionStream; the rest goes through
 * node:zlib (gzip at a chosen level, and the native zstd of FACTS.md).
 *
 * @module
 */
import { constants as zlib, createGzip, createZstdCompress, createZstdDecompress } from "node:zlib";
import type { Transform } from "node:stream";
import { once } from "node:events";
import { HexzError } from "../errors.ts";

/** The compressions a tar is read and written with. */
export type TarCompression = "none" | "gzip" | "zstd";

/** What the first bytes of a file say it is compressed with; other compressors are refused. */
export function detectCompression(head: Uint8Array, name: string): TarCompression {
  const is = (...m: number[]) => m.every((b, i) => head[i] === b);
  if (is(0x1f, 0x8b)) return "gzip";
  if (is(0x28, 0xb5, 0x2f, 0xfd)) return "zstd";
  const other = is(0x42, 0x5a, 0x68)
    ? "bzip2"
    : is(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)
    ? "xz"
    : is(0x04, 0x22, 0x4d, 0x18)
    ? "lz4"
    : "";
  if (other) {
    throw new HexzError(
      "unsupported",
      `${name}: compressed with ${other}, which convert does not read (decompress it first, ` +
        "or recompress with gzip or zstd)",
    );
  }
  return "none";
}

/**
 * `chunks` through a node:zlib transform. Its errors (damaged input) end the iteration as
 * exceptions. Deno 2.9.6's streaming zstd does not emit them as 'error' events: it throws
 * them from a callback, where they would end the process with a stack trace ("Uncaught Error:
 * Zstd decompress error: ..."), so while the transform runs such errors are caught as the
 * runtime reports them and handed to the stream.
 */
async function* throughNode(
  chunks: AsyncIterable<Uint8Array>,
  z: Transform,
): AsyncGenerator<Uint8Array> {
  const onUncaught = (ev: ErrorEvent) => {
    if (!/^Zstd (de)?compress error/.test(String(ev.error?.message ?? ""))) return;
    ev.preventDefault();
    z.destroy(ev.error);
  };
  globalThis.addEventListener("error", onUncaught);
  const feed = (async () => {
    try {
      for await (const c of chunks) {
        if (!z.write(c)) await once(z, "drain");
      }
      z.end();
    } catch (e) {
      z.destroy(e as Error);
    }
  })();
  try {
    for await (const out of z) yield out as Uint8Array;
  } finally {
    z.destroy();
    await feed;
    globalThis.removeEventListener("error", onUncaught);
  }
}

/** The decompressed bytes of `chunks`; `name` names the input in errors. */
export async function* decompress(
  chunks: AsyncIterable<Uint8Array>,
  kind: TarCompression,
  name: string,
): AsyncGenerator<Uint8Array> {
  if (kind === "none") {
    yield* chunks;
    return;
  }
  const out = kind === "gzip"
    ? ReadableStream.from(chunks).pipeThrough(
      new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    )
    : throughNode(chunks, createZstdDecompress());
  try {
    for await (const c of out) yield c;
  } catch (e) {
    if (e instanceof HexzError) throw e;
    throw new HexzError("corrupt", `${name}: ${kind} data is damaged: ${(e as Error).message}`);
  }
}

/** Default levels, as the gzip and zstd command lines have them. */
export const DEFAULT_TAR_LEVEL: Record<Exclude<TarCompression, "none">, number> = {
  gzip: 6,
  zstd: 3,
};

/** The compressed bytes of `chunks` at `level` (gzip 1-9, zstd 1-19). */
export function compress(
  chunks: AsyncIterable<Uint8Array>,
  kind: TarCompression,
  level?: number,
): AsyncIterable<Uint8Array> {
  if (kind === "none") return chunks;
  const l = level ?? DEFAULT_TAR_LEVEL[kind];
  if (kind === "gzip") {
    if (!Number.isInteger(l) || l < 1 || l > 9) {
      throw new HexzError("usage", `--level: gzip output takes levels 1-9, got ${l}`);
    }
    return throughNode(chunks, createGzip({ level: l }));
  }
  if (!Number.isInteger(l) || l < 1 || l > 19) {
    throw new HexzError("usage", `--level: zstd output takes levels 1-19, got ${l}`);
  }
  return throughNode(
    chunks,
    createZstdCompress({ params: { [zlib.ZSTD_c_compressionLevel]: l } }),
  );
}
