/**
 * The zero-copy path of a pack worker for file ranges: the range (pieces of one or more files,
 * back to back) is read straight into WebAssembly memory (wasm/src/core.c), and every block is
 * tested for zeros, hashed and compressed where it lies, its payload written next to the
 * previous one. The result is copied out once, into the buffers that are transferred back.
 * Block for block it computes exactly what `processBlock` with `createCompressor` does.
 *
 * @module
 */
import { readSync } from "node:fs";
import { HexzError } from "../errors.ts";
import { wasmBase64 } from "../../wasm/gen/core.ts";
import { wasmModule } from "../../wasm/module.ts";
import { CODEC, type CodecName } from "../format/constants.ts";
import type { RangePart } from "./pipeline.ts";
import { zstdCompressInto } from "../codec/zstd.ts";

interface CoreExports {
  memory: WebAssembly.Memory;
  arena(size: number): number;
  is_zero(p: number, n: number): number;
  b3_hash(p: number, n: number, out: number): void;
  lz4_compress(src: number, n: number, dst: number, cap: number, accel: number): number;
}

export interface RangeResult {
  codecs: number[];
  payloadLengths: number[];
  hashes: ArrayBuffer;
  payloads: ArrayBuffer;
}

/** Whether the range kernel handles this codec (all but dictionary zstd, which never comes
 * to workers). Zstd compresses through node:zlib, straight from the block's place in memory. */
export function rangeKernelHandles(codec: CodecName): boolean {
  return codec === "lz4" || codec === "none" || codec === "zstd";
}

const bound = (n: number) => n + Math.floor(n / 255) + 16;

/** Reads the parts (`fds` open on their files) back to back into `into` from `at`; returns
 * the bytes read. */
export function readParts(
  parts: RangePart[],
  fds: number[],
  into: Uint8Array,
  at: number,
): number {
  let end = at;
  parts.forEach((p, i) => {
    let got = 0;
    while (got < p.length) {
      const r = readSync(fds[i], into, end + got, p.length - got, p.offset + got);
      if (r === 0) {
        throw new HexzError(
          "io",
          `${p.path}: file shrank while being packed (at ${p.offset + got})`,
        );
      }
      got += r;
    }
    end += p.length;
  });
  return end - at;
}

/**
 * A kernel for one worker. `firstTime(hashBytes)` says whether a block's hash is new to this
 * worker (repeats get codec -2 and no payload, as in worker.ts).
 */
export function createRangeKernel(
  codec: CodecName,
  level: number,
  firstTime: (hash: Uint8Array) => boolean,
) {
  const mod = wasmModule<CoreExports>("core", wasmBase64);
  const ex = mod.exports;
  return (parts: RangePart[], fds: number[], lengths: number[]): RangeResult => {
    const n = lengths.length;
    const total = lengths.reduce((a, b) => a + b, 0);
    // Layout: [input | payloads | hashes].
    const base = mod.arena(total + bound(total) + 32 * n);
    const outAt = base + total;
    const hashAt = outAt + bound(total);
    let mem = mod.bytes();
    if (readParts(parts, fds, mem, base) !== total) {
      throw new Error("range parts do not add up to their blocks");
    }
    const codecs: number[] = new Array(n);
    const payloadLengths: number[] = new Array(n);
    let inOff = 0, outOff = 0;
    for (let i = 0; i < n; i++) {
      const len = lengths[i];
      const p = base + inOff;
      inOff += len;
      payloadLengths[i] = 0;
      if (ex.is_zero(p, len)) {
        codecs[i] = -1;
        continue;
      }
      const h = hashAt + 32 * i;
      ex.b3_hash(p, len, h);
      mem = mod.bytes();
      if (!firstTime(mem.subarray(h, h + 32))) {
        codecs[i] = -2;
        continue;
      }
      // As createCompressor: a compressed payload is kept only when it saves at least a byte.
      let c = 0;
      if (codec === "lz4" && len > 1) {
        c = ex.lz4_compress(p, len, outAt + outOff, len - 1, level);
      } else if (codec === "zstd" && len > 1) {
        mem = mod.bytes();
        // Room for len bytes: a frame is kept only if shorter, as createCompressor does.
        const dst = mem.subarray(outAt + outOff, outAt + outOff + len);
        c = zstdCompressInto(mem.subarray(p, p + len), dst, level);
      }
      if (c > 0) {
        codecs[i] = codec === "lz4" ? CODEC.lz4 : CODEC.zstd;
        payloadLengths[i] = c;
        outOff += c;
      } else {
        mem = mod.bytes();
        mem.copyWithin(outAt + outOff, p, p + len);
        codecs[i] = CODEC.none;
        payloadLengths[i] = len;
        outOff += len;
      }
    }
    mem = mod.bytes();
    return {
      codecs,
      payloadLengths,
      hashes: mem.slice(hashAt, hashAt + 32 * n).buffer,
      payloads: mem.slice(outAt, outAt + outOff).buffer,
    };
  };
}
