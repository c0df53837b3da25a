/**
 * The zero-copy decode path of extract workers, for blocks stored with codec none, LZ4 or
 * zstd in unencrypted archives on local files: the stored payload is read straight into
 * WebAssembly memory (wasm/src/core.c), decoded there (LZ4 by our decoder, zstd by the native
 * one driven into that memory), verified against its BLAKE3 in place, and left there for the
 * caller to write out. No JavaScript buffer is allocated per block. Errors read exactly as
 * the archive's own.
 *
 * @module
 */
import { readSync } from "node:fs";
import { HexzError } from "../errors.ts";
import { wasmBase64 } from "../../wasm/gen/core.ts";
import { wasmModule } from "../../wasm/module.ts";
import { CODEC } from "../format/constants.ts";
import { zstdDecompressInto } from "../codec/zstd.ts";

interface CoreExports {
  memory: WebAssembly.Memory;
  arena(size: number): number;
  b3_hash(p: number, n: number, out: number): void;
  lz4_decompress(src: number, n: number, dst: number, size: number): number;
}

/** Largest block this path takes; larger ones use the archive's path. */
export const KERNEL_MAX_BLOCK = 64 * 1024 * 1024;

/** Codecs this path decodes. */
export function kernelCodec(codec: number): boolean {
  return codec === CODEC.none || codec === CODEC.lz4 || codec === CODEC.zstd;
}

/** One stored block, as its (already validated) index entry describes it. */
export interface StoredBlock {
  fd: number;
  location: number;
  storedLength: number;
  logicalLength: number;
  codec: number;
  /** Its BLAKE3-256. */
  hash: Uint8Array;
  /** Names the block in errors, e.g. "disk block 7 (offset 458752)". */
  what: string;
}

export interface BlockKernel {
  /**
   * Lays out memory for blocks of up to `maxStored` stored bytes decoding into `outBytes`
   * bytes in all; returns where the output area starts. Views from `bytes()` taken before
   * are stale afterwards.
   */
  reserve(maxStored: number, outBytes: number): number;
  /** Reads, decodes and verifies `b` into memory at `outAt` (inside the reserved area). */
  decode(b: StoredBlock, outAt: number): void;
  /** The module's whole memory. */
  bytes(): Uint8Array;
}

export function createBlockKernel(): BlockKernel {
  const mod = wasmModule<CoreExports>("core", wasmBase64);
  const ex = mod.exports;
  // Layout: [hash (32) | one stored payload (maxStored) | output area].
  let base = 0, inAt = 0, outStart = 0, outEnd = 0;
  const readAt = (b: StoredBlock, at: number) => {
    let got = 0;
    while (got < b.storedLength) {
      const r = readSync(b.fd, mod.bytes(), at + got, b.storedLength - got, b.location + got);
      if (r === 0) throw new HexzError("io", `${b.what}: unexpected end of file`);
      got += r;
    }
  };
  return {
    reserve(maxStored, outBytes) {
      base = mod.arena(32 + maxStored + outBytes);
      inAt = base + 32;
      outStart = inAt + maxStored;
      outEnd = outStart + outBytes;
      return outStart;
    },
    decode(b, outAt) {
      const n = b.logicalLength;
      if (
        !kernelCodec(b.codec) || b.storedLength > outStart - inAt || outAt < outStart ||
        outAt + n > outEnd
      ) throw new RangeError(`${b.what}: outside the reserved area`);
      if (b.codec === CODEC.none) {
        if (b.storedLength !== n) throw new HexzError("corrupt", `${b.what}: raw length mismatch`);
        readAt(b, outAt);
      } else {
        readAt(b, inAt);
        if (b.codec === CODEC.lz4) {
          if (ex.lz4_decompress(inAt, b.storedLength, outAt, n) !== n) {
            throw new HexzError("corrupt", `${b.what}: malformed LZ4 block`);
          }
        } else {
          const mem = mod.bytes();
          try {
            zstdDecompressInto(
              mem.subarray(inAt, inAt + b.storedLength),
              mem.subarray(outAt, outAt + n),
            );
          } catch (err) {
            throw new HexzError("corrupt", `${b.what}: ${(err as Error).message}`);
          }
        }
      }
      ex.b3_hash(outAt, n, base);
      const mem = mod.bytes();
      for (let i = 0; i < 32; i++) {
        if (mem[base + i] !== b.hash[i]) {
          throw new HexzError("corrupt", `${b.what}: BLAKE3 mismatch: the block is damaged`);
        }
      }
    },
    bytes: () => mod.bytes(),
  };
}
