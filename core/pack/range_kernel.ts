/**
 * The work of a pack worker, zero-copy: a range (pieces of one or more files, back to back) is
 * read straight into WebAssembly memory (wasm/src/core.c), or a batch of blocks is copied
 * there once, and every block is tested for zeros, hashed and compressed where it lies, its
 * payload written next to the previous one. The result is copied out once, into the buffers
 * that are transferred back. Block for block it computes exactly what `processBlock` with
 * `createCompressor` does.
 *
 * It imports no `node:` module (each costs a worker 10-25 ms to load): files are read through
 * Deno's own calls, and zstd's compressor, which lives in `node:zlib`, is passed in only by
 * workers that compress with it.
 *
 * @module
 */
import { HexzError, osReason } from "../errors.ts";
import { wasmBase64 } from "../../wasm/gen/core.ts";
import { wasmModule } from "../../wasm/module.ts";
import { CODEC, type CodecName } from "../format/constants.ts";
import type { RangePart } from "./pool.ts";

/** Compresses `src` into one zstd frame in `dst`: its length if shorter than `dst`, else 0
 * (codec/zstd.ts zstdCompressInto). */
export type ZstdInto = (src: Uint8Array, dst: Uint8Array, level: number) => number;

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

const bound = (n: number) => n + Math.floor(n / 255) + 16;

/**
 * Reads the parts back to back into `into` from `at`, one file at a time (a range may name
 * thousands of small files: they are never open together); returns the bytes read. A file that
 * is not the size or has not the modification time it was listed with changed while being
 * packed.
 */
export function readParts(parts: RangePart[], into: Uint8Array, at: number): number {
  let end = at;
  for (const p of parts) {
    let f: Deno.FsFile;
    try {
      f = Deno.openSync(p.path, { read: true });
    } catch (e) {
      throw new HexzError("io", `${p.path}: ${osReason(e)}`);
    }
    try {
      f.seekSync(p.offset, Deno.SeekMode.Start);
      let got = 0;
      while (got < p.length) {
        const r = f.readSync(into.subarray(end + got, end + p.length));
        if (r === null || r === 0) {
          throw new HexzError(
            "io",
            `${p.path}: file shrank while being packed (at ${p.offset + got})`,
          );
        }
        got += r;
      }
      if (p.size !== undefined || p.mtimeMs !== undefined) {
        const st = f.statSync();
        if (p.size !== undefined && st.size !== p.size) {
          throw new HexzError(
            "io",
            `${p.path}: changed while being packed (${p.size} -> ${st.size} bytes)`,
          );
        }
        if (p.mtimeMs !== undefined && (st.mtime?.getTime() ?? 0) !== p.mtimeMs) {
          throw new HexzError("io", `${p.path}: changed while being packed (written to)`);
        }
      }
    } catch (e) {
      if (e instanceof HexzError) throw e;
      throw new HexzError("io", `${p.path}: ${osReason(e)}`);
    } finally {
      f.close();
    }
    end += p.length;
  }
  return end - at;
}

/** What a worker does with a range or a batch (see createRangeKernel). */
export interface RangeKernel {
  /** Reads the parts (readParts) and processes their `lengths` blocks. */
  range(parts: RangePart[], lengths: number[]): RangeResult;
  /** Processes blocks given back to back from the start of `data` (which may be longer); a
   * negative length is an all-zero block of that many bytes that is not in `data`. */
  batch(data: Uint8Array, lengths: number[]): RangeResult;
}

/**
 * A kernel for one worker. `firstTime(hashBytes)` says whether a block's hash is new to this
 * worker (repeats get codec -2 and no payload, as in worker.ts). `zstdInto` is required for
 * codec "zstd".
 */
export function createRangeKernel(
  codec: CodecName,
  level: number,
  firstTime: (hash: Uint8Array) => boolean,
  zstdInto?: ZstdInto,
): RangeKernel {
  if (codec === "zstd" && !zstdInto) throw new Error("zstd kernel without a compressor");
  const mod = wasmModule<CoreExports>("core", wasmBase64);
  const ex = mod.exports;
  let mem = mod.bytes();
  // Layout: [input | payloads | hashes]; returns the input's place.
  const layout = (total: number, n: number) => {
    const base = mod.arena(total + bound(total) + 32 * n);
    mem = mod.bytes();
    return base;
  };
  const process = (base: number, total: number, lengths: number[]): RangeResult => {
    const n = lengths.length;
    const outAt = base + total;
    const hashAt = outAt + bound(total);
    const codecs: number[] = new Array(n);
    const payloadLengths: number[] = new Array(n);
    let inOff = 0, outOff = 0;
    for (let i = 0; i < n; i++) {
      const len = lengths[i];
      payloadLengths[i] = 0;
      if (len < 0) {
        codecs[i] = -1;
        continue;
      }
      const p = base + inOff;
      inOff += len;
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
        c = zstdInto!(mem.subarray(p, p + len), dst, level);
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
    if (inOff !== total) throw new Error("block lengths do not add up to the input");
    mem = mod.bytes();
    return {
      codecs,
      payloadLengths,
      hashes: mem.slice(hashAt, hashAt + 32 * n).buffer,
      payloads: mem.slice(outAt, outAt + outOff).buffer,
    };
  };
  return {
    range(parts, lengths) {
      const total = lengths.reduce((a, b) => a + b, 0);
      const base = layout(total, lengths.length);
      if (readParts(parts, mem, base) !== total) {
        throw new Error("range parts do not add up to their blocks");
      }
      return process(base, total, lengths);
    },
    batch(data, lengths) {
      const total = lengths.reduce((a, b) => b > 0 ? a + b : a, 0);
      if (total > data.length) throw new Error("batch shorter than its blocks");
      const base = layout(total, lengths.length);
      mem.set(data.subarray(0, total), base);
      return process(base, total, lengths);
    },
  };
}
