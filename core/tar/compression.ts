/**
 * The compression around a tar: found from the first bytes of the input (gzip 1f 8b, zstd
 * 28 b5 2f fd), never from its name alone, and undone as the input is read; and put around a
 * tar as it is written. gzip is read through the runtime's DecompressionStream; the rest goes through
 * node:zlib (gzip at a chosen level, and the native zstd of FACTS.md).
 *
 * @module
 */
import { constants as zlib, createGzip, createZstdCompress, createZstdDecompress } from "node:zlib";
import { Duplex } from "node:stream";
import { HexzError } from "../errors.ts";

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

function nodeTransform(z: Duplex): TransformStream<Uint8Array, Uint8Array> {
  return Duplex.toWeb(z) as unknown as TransformStream<Uint8Array, Uint8Array>;
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
  const source = ReadableStream.from(chunks);
  const out = source.pipeThrough(
    kind === "gzip"
      ? new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>
      : nodeTransform(createZstdDecompress()),
  );
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
    return ReadableStream.from(chunks).pipeThrough(nodeTransform(createGzip({ level: l })));
  }
  if (!Number.isInteger(l) || l < 1 || l > 19) {
    throw new HexzError("usage", `--level: zstd output takes levels 1-19, got ${l}`);
  }
  return ReadableStream.from(chunks).pipeThrough(
    nodeTransform(createZstdCompress({ params: { [zlib.ZSTD_c_compressionLevel]: l } })),
  );
}
