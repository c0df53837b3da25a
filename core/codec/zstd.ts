/**
 * Plain Zstd on Deno's native `node:zlib` (zstd frames). Decompression is bounded by the
 * destination's size, never by what a frame claims.
 *
 * @module
 */
import {
  constants,
  createZstdCompress,
  createZstdDecompress,
  zstdCompressSync,
  zstdDecompressSync,
} from "node:zlib";
import { HexzError } from "../errors.ts";

export function checkZstdLevel(level: number): void {
  if (!Number.isInteger(level) || level < -7 || level > 22 || level === 0) {
    throw new HexzError("usage", `zstd level must be -7..-1 or 1..22, got ${level}`);
  }
}

function params(level: number) {
  return {
    [constants.ZSTD_c_compressionLevel]: level,
    [constants.ZSTD_c_checksumFlag]: 0,
    [constants.ZSTD_c_contentSizeFlag]: 1,
  };
}

/** Worst-case frame size for `n` input bytes (ZSTD_COMPRESSBOUND). */
export function zstdBound(n: number): number {
  return n + (n >>> 8) + (n < 128 * 1024 ? (128 * 1024 - n) >>> 11 : 0) + 64;
}

/** One zstd frame of `src` at `level`. */
export function zstdCompress(src: Uint8Array, level: number): Uint8Array {
  checkZstdLevel(level);
  if (frameEncoder(level)) {
    const out = new Uint8Array(zstdBound(src.length) + 1);
    const n = zstdCompressInto(src, out, level);
    if (n > 0) return out.subarray(0, n);
  }
  const out = zstdCompressSync(src, { params: params(level) });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * One zstd frame of `src` at `level`, written into `dst`: returns its length when it is
 * shorter than `dst`, else 0. A caller that offers `src.length` bytes learns whether
 * compressing saves anything without building the frame elsewhere; a frame that fills `dst`
 * exactly is reported as not fitting, because the native call cannot tell it was complete.
 * Drives a native context kept per level, as zstdDecompressInto does: on 100 MiB of the OS
 * image in 64 KiB blocks, 338-471 ms against 401-559 ms for `zstdCompressSync` in the same
 * runs, and 0.03% smaller (the whole input is given at once, so the frame is sized for it).
 */
export function zstdCompressInto(src: Uint8Array, dst: Uint8Array, level: number): number {
  checkZstdLevel(level);
  const e = frameEncoder(level);
  if (!e) {
    const out = zstdCompress(src, level);
    if (out.length >= dst.length) return 0; // only a shorter frame is kept
    dst.set(out);
    return out.length;
  }
  try {
    e.h.writeSync(constants.ZSTD_e_end, src, 0, src.length, dst, 0, dst.length);
    // Done when all input is taken and room is left (a full output may be holding back more).
    return e.state[1] === 0 && e.state[0] > 0 ? dst.length - e.state[0] : 0;
  } catch (err) {
    throw new HexzError("io", `zstd: ${(err as Error).message}`);
  } finally {
    e.h.reset();
  }
}

/** The native decoder behind node:zlib's zstd streams, driven directly (see frameDecoder). */
interface ZstdHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOff: number,
    inLen: number,
    out: Uint8Array,
    outOff: number,
    outLen: number,
  ): void;
  reset(): void;
}

type Driven = { h: ZstdHandle; state: Uint32Array };
let handle: Driven | null | undefined;
const encoders = new Map<number, Driven | null>();

/** The handle of a node:zlib stream, if it has the shape we drive. */
// deno-lint-ignore no-explicit-any
function driven(stream: any): Driven | null {
  const h = stream?._handle, state = stream?._writeState;
  return typeof h?.writeSync === "function" && typeof h.reset === "function" &&
      state instanceof Uint32Array && state.length >= 2
    ? { h, state }
    : null;
}

function frameEncoder(level: number): Driven | null {
  let e = encoders.get(level);
  if (e === undefined) {
    try {
      e = driven(createZstdCompress({ params: params(level) }));
    } catch {
      e = null;
    }
    encoders.set(level, e);
  }
  return e;
}

/**
 * One reusable native decoder context. `zstdDecompressSync` builds a new stream object for
 * every call and decodes into 16 KiB pieces that it then concatenates: on 64 KiB blocks of
 * the OS image that cost 254 ms where driving the same native decoder straight into the
 * destination took 143-155 ms (the `zstd -b3 -B64K` figure for those bytes is about 150 ms).
 * The stream's handle is not a documented API, so its shape is checked and, if it differs,
 * every call falls back to `zstdDecompressSync`.
 */
function frameDecoder(): Driven | null {
  if (handle !== undefined) return handle;
  try {
    handle = driven(createZstdDecompress());
  } catch {
    handle = null; // no such internals: the fallback serves
  }
  return handle;
}

const probe = new Uint8Array(1);

/** Whether zstd drives the native contexts directly (exported for tests). */
export function zstdFastPath(): boolean {
  return frameDecoder() !== null && frameEncoder(3) !== null;
}

/** Decodes one frame into `dst`, which must be exactly the original length. */
export function zstdDecompressInto(src: Uint8Array, dst: Uint8Array): number {
  const d = frameDecoder();
  if (!d) return decompressSlow(src, dst);
  const { h, state } = d;
  let inOff = 0, outOff = 0;
  try {
    // Each call decodes until the input is used up or the output is full; a frame can need
    // a second call for its last block header once the output is exactly full.
    for (let calls = 0; calls < 64; calls++) {
      const inLen = src.length - inOff, outLen = dst.length - outOff;
      h.writeSync(constants.ZSTD_e_end, src, inOff, inLen, dst, outOff, outLen);
      const usedIn = inLen - state[1], usedOut = outLen - state[0];
      inOff += usedIn;
      outOff += usedOut;
      if (outOff === dst.length || inOff === src.length || (usedIn === 0 && usedOut === 0)) break;
    }
    if (outOff === dst.length) {
      // Full: one byte more means the frame is longer than the block it claims to be.
      h.writeSync(constants.ZSTD_e_end, src, inOff, src.length - inOff, probe, 0, 1);
      inOff += (src.length - inOff) - state[1];
      if (state[0] === 0) {
        throw new HexzError("corrupt", `zstd: decoded more than the expected ${dst.length} bytes`);
      }
    }
  } catch (e) {
    if (e instanceof HexzError) throw e;
    throw new HexzError("corrupt", `zstd: ${(e as Error).message}`);
  } finally {
    h.reset();
  }
  if (outOff !== dst.length) {
    throw new HexzError("corrupt", `zstd: decoded ${outOff} bytes, expected ${dst.length}`);
  }
  if (inOff !== src.length) {
    throw new HexzError("corrupt", `zstd: ${src.length - inOff} bytes after the end of the frame`);
  }
  return dst.length;
}

/** zstdDecompressInto through `zstdDecompressSync` (exported for tests). */
export function decompressSlow(src: Uint8Array, dst: Uint8Array): number {
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
