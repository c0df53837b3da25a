/**
 * Block codecs by id: what the packer compresses with and what the reader decodes. A block
 * whose compressed form is not smaller than its logical bytes is stored raw (codec 0).
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { CODEC, type CodecName } from "../format/constants.ts";
import { checkLevel } from "./level.ts";
import { lz4Compress, lz4DecompressInto } from "./lz4.ts";
import { zstdCompress, zstdDecompressInto } from "./zstd.ts";

/** A prepared dictionary codec (zstd with the archive's dictionary). */
export interface DictCodec {
  compress(src: Uint8Array): Uint8Array;
  decompressInto(src: Uint8Array, dst: Uint8Array): number;
  /** Frees what the codec prepared (its dictionary tables). */
  close?(): void;
}

export interface BlockCompressor {
  /** Codec id written in entries of blocks this compressor shrank. */
  readonly id: number;
  readonly name: string;
  /**
   * Compresses one block. Returns the payload and its codec id: the compressed bytes (valid
   * until the next call), or `src` itself with codec 0 when compression does not help.
   */
  compress(src: Uint8Array): { payload: Uint8Array; codec: number };
}

export { checkLevel, DEFAULT_LEVEL, parseCodecName } from "./level.ts";

export function createCompressor(
  name: CodecName,
  level: number,
  dict?: DictCodec,
): BlockCompressor {
  checkLevel(name, level);
  if (name === "none") {
    return { id: CODEC.none, name, compress: (src) => ({ payload: src, codec: CODEC.none }) };
  }
  if (name === "lz4") {
    return {
      id: CODEC.lz4,
      name,
      compress(src) {
        // Only worth storing compressed when it saves at least one byte.
        const out = src.length > 1 ? lz4Compress(src, level, src.length - 1) : null;
        return out ? { payload: out, codec: CODEC.lz4 } : { payload: src, codec: CODEC.none };
      },
    };
  }
  const id = dict ? CODEC.zstdDict : CODEC.zstd;
  return {
    id,
    name: dict ? "zstd+dict" : "zstd",
    compress(src) {
      const out = dict ? dict.compress(src) : zstdCompress(src, level);
      return out.length < src.length
        ? { payload: out, codec: id }
        : { payload: src, codec: CODEC.none };
    },
  };
}

/** Decodes a stored payload into `dst` (exactly the block's logical length). */
export function decompressInto(
  codec: number,
  src: Uint8Array,
  dst: Uint8Array,
  dict: DictCodec | null,
  what: string,
): void {
  try {
    switch (codec) {
      case CODEC.none:
        if (src.length !== dst.length) throw new HexzError("corrupt", "raw length mismatch");
        dst.set(src);
        return;
      case CODEC.lz4:
        lz4DecompressInto(src, dst);
        return;
      case CODEC.zstd:
        zstdDecompressInto(src, dst);
        return;
      case CODEC.zstdDict:
        if (!dict) throw new HexzError("corrupt", "block needs a dictionary the archive lacks");
        dict.decompressInto(src, dst);
        return;
      default:
        throw new HexzError("corrupt", `unknown codec ${codec}`);
    }
  } catch (e) {
    if (e instanceof HexzError) throw new HexzError("corrupt", `${what}: ${e.message}`);
    throw new HexzError("corrupt", `${what}: cannot decompress: ${(e as Error).message}`);
  }
}
