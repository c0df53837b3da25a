/**
 * The zero-copy decode path of extract workers, for blocks stored in this (unencrypted)
 * archive with codec none, LZ4 or zstd: the stored payload is read straight into WebAssembly
 * memory (wasm/src/core.c), decoded there (LZ4) or by node:zlib (zstd), verified against its
 * BLAKE3 in place, and copied once into the caller's buffer. Other blocks (in a parent,
 * dictionary zstd) return false and take the archive's ordinary path. Errors read exactly as
 * the archive's own.
 *
 * @module
 */
import { readSync } from "node:fs";
import { HexzError } from "../errors.ts";
import { wasmBase64 } from "../../wasm/gen/core.ts";
import { wasmModule } from "../../wasm/module.ts";
import { CODEC, KIND } from "../format/constants.ts";
import type { BlockInfo } from "./archive.ts";
import { STREAMS } from "../format/constants.ts";
import { zstdDecompressInto } from "../codec/zstd.ts";

interface CoreExports {
  memory: WebAssembly.Memory;
  arena(size: number): number;
  b3_hash(p: number, n: number, out: number): void;
  lz4_decompress(src: number, n: number, dst: number, size: number): number;
}

/** Largest block this path takes; larger ones use the archive's path. */
const MAX = 64 * 1024 * 1024;

export function createBlockKernel(fd: number) {
  const mod = wasmModule<CoreExports>("core", wasmBase64);
  const ex = mod.exports;
  /** Decodes `b` into `dst` (exactly its logical length); false when it is not for this path. */
  return (b: BlockInfo, dst: Uint8Array): boolean => {
    const e = b.entry;
    if (
      e.kind === KIND.parent || e.kind === KIND.zero || e.flags !== 0 ||
      (e.codec !== CODEC.none && e.codec !== CODEC.lz4 && e.codec !== CODEC.zstd) ||
      e.storedLength > MAX || e.logicalLength > MAX || dst.length !== e.logicalLength
    ) return false;
    const what = `${STREAMS[b.stream]} block ${b.index} (offset ${b.offset})`;
    const n = e.logicalLength;
    // Layout: [hash (32) | stored payload | decoded block].
    const base = mod.arena(32 + e.storedLength + n);
    const inAt = base + 32;
    const outAt = inAt + e.storedLength;
    let got = 0;
    while (got < e.storedLength) {
      const r = readSync(fd, mod.bytes(), inAt + got, e.storedLength - got, e.location + got);
      if (r === 0) throw new HexzError("io", `${what}: unexpected end of file`);
      got += r;
    }
    let at = outAt;
    if (e.codec === CODEC.none) {
      if (e.storedLength !== n) throw new HexzError("corrupt", `${what}: raw length mismatch`);
      at = inAt;
    } else if (e.codec === CODEC.lz4) {
      if (ex.lz4_decompress(inAt, e.storedLength, outAt, n) !== n) {
        throw new HexzError("corrupt", `${what}: malformed LZ4 block`);
      }
    } else {
      try {
        zstdDecompressInto(mod.bytes().subarray(inAt, inAt + e.storedLength), dst);
      } catch (err) {
        throw new HexzError("corrupt", `${what}: ${(err as Error).message}`);
      }
      mod.bytes().set(dst, outAt);
    }
    ex.b3_hash(at, n, base);
    const mem = mod.bytes();
    for (let i = 0; i < 32; i++) {
      if (mem[base + i] !== e.hash[i]) {
        throw new HexzError("corrupt", `${what}: BLAKE3 mismatch: the block is damaged`);
      }
    }
    if (e.codec !== CODEC.zstd) dst.set(mem.subarray(at, at + n));
    return true;
  };
}
