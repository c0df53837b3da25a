/**
 * LZ4 block format, compressed and decompressed by our own WebAssembly module (wasm/src/lz4.c).
 * Blocks are raw LZ4 blocks without the frame format; the block's logical size comes from the
 * index entry, and the decoder must produce exactly that many bytes.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { wasmBase64 } from "../../wasm/gen/lz4.ts";
import { wasmModule } from "../../wasm/module.ts";

interface Lz4Exports {
  memory: WebAssembly.Memory;
  arena(size: number): number;
  lz4_compress(src: number, n: number, dst: number, cap: number, accel: number): number;
  lz4_decompress(src: number, n: number, dst: number, size: number): number;
}

const mod = wasmModule<Lz4Exports>("lz4", wasmBase64);
const { lz4_compress, lz4_decompress } = mod.exports;

/** The largest compressed size of `n` bytes (LZ4_compressBound). */
export function lz4CompressBound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

/**
 * Compresses `src` with acceleration `accel` (1 = `lz4 -1`). Returns a view of the compressed
 * bytes inside the module's memory, valid until the next call into this module, or null when
 * the result would not be smaller than `limit` bytes (default: the bound, never null).
 */
export function lz4Compress(src: Uint8Array, accel = 1, limit?: number): Uint8Array | null {
  const cap = Math.min(limit ?? lz4CompressBound(src.length), lz4CompressBound(src.length));
  const inAt = mod.arena(src.length + cap);
  const outAt = inAt + src.length;
  const mem = mod.bytes();
  mem.set(src, inAt);
  const n = lz4_compress(inAt, src.length, outAt, cap, accel);
  return n === 0 ? null : mem.subarray(outAt, outAt + n);
}

/** Compresses `src` into `dst`; returns the compressed size, or 0 when it does not fit. */
export function lz4CompressInto(src: Uint8Array, dst: Uint8Array, accel = 1): number {
  const out = lz4Compress(src, accel, dst.length);
  if (!out) return 0;
  dst.set(out);
  return out.length;
}

/**
 * Decodes the LZ4 block `src` into exactly `dst.length` bytes. Throws HexzError("corrupt")
 * for any malformed input; never reads or writes outside the two buffers.
 */
export function lz4DecompressInto(src: Uint8Array, dst: Uint8Array): void {
  const inAt = mod.arena(src.length + dst.length);
  const outAt = inAt + src.length;
  const mem = mod.bytes();
  mem.set(src, inAt);
  if (lz4_decompress(inAt, src.length, outAt, dst.length) !== dst.length) {
    throw new HexzError("corrupt", "malformed LZ4 block");
  }
  dst.set(mem.subarray(outAt, outAt + dst.length));
}

/**
 * The zero-copy interface: a view of `n` bytes inside the module's memory to read input
 * straight into, for `lz4CompressInPlace`. Valid until the next call into this module.
 */
export function lz4Input(n: number): Uint8Array {
  const at = mod.arena(n + lz4CompressBound(n));
  return mod.bytes().subarray(at, at + n);
}

/** Compresses the first `n` bytes of `lz4Input(n)`'s view, as `lz4Compress`. */
export function lz4CompressInPlace(n: number, accel = 1, limit?: number): Uint8Array | null {
  const cap = Math.min(limit ?? lz4CompressBound(n), lz4CompressBound(n));
  const inAt = mod.arena(n + lz4CompressBound(n));
  const outAt = inAt + n;
  const r = lz4_compress(inAt, n, outAt, cap, accel);
  return r === 0 ? null : mod.bytes().subarray(outAt, outAt + r);
}

/**
 * Decodes `src` into `size` bytes inside the module's memory and returns a view of them
 * (valid until the next call into this module): no copy out. Throws as `lz4DecompressInto`.
 */
export function lz4DecompressView(src: Uint8Array, size: number): Uint8Array {
  const inAt = mod.arena(src.length + size);
  const outAt = inAt + src.length;
  const mem = mod.bytes();
  mem.set(src, inAt);
  if (lz4_decompress(inAt, src.length, outAt, size) !== size) {
    throw new HexzError("corrupt", "malformed LZ4 block");
  }
  return mod.bytes().subarray(outAt, outAt + size);
}
