/**
 * Plain Zstd on Deno's native `node:zlib` (zstd frames). Decompression is bounded by the
 * destination's size, never by what a frame claims.
 *
 * @module
 */
import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { HexzError } from "../errors.ts";

export function checkZstdLevel(level: number): void {
  if (!Number.isInteger(level) || level < -7 || level > 22 || level === 0) {
    throw new HexzError("usage", `zstd level must be -7..-1 or 1..22, got ${level}`);
  }
}

/** One zstd frame of `src` at `level`. */
export function zstdCompress(src: Uint8Array, level: number): Uint8Array {
  checkZstdLevel(level);
  const out = zstdCompressSync(src, {
    params: {
      [constants.ZSTD_c_compressionLevel]: level,
      [constants.ZSTD_c_checksumFlag]: 0,
      [constants.ZSTD_c_contentSizeFlag]: 1,
    },
  });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Decodes one frame into `dst`, which must be exactly the original length. */
export function zstdDecompressInto(src: Uint8Array, dst: Uint8Array): number {
  let out: Uint8Array;
  try {
    // One byte of slack so an overlong frame is detected instead of silently cut.
    out = zstdDecompressSync(src, { maxOutputLength: dst.length + 1 });
  } catch (e) {
    throw new HexzError("corrupt", `zstd: ${(e as Error).message}`);
  }
  if (out.length !== dst.length) {
    throw new HexzError("corrupt", `zstd: decoded ${out.length} bytes, expected ${dst.length}`);
  }
  dst.set(out);
  return dst.length;
}
