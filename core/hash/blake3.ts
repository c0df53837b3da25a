/**
 * BLAKE3: plain hash, keyed hash and key derivation, with extendable output, computed by our
 * own WebAssembly module (wasm/src/blake3.c, SIMD128, four chunks at a time).
 *
 * Every call is synchronous. Incremental hashers keep their state in JavaScript between calls,
 * so any number of them can be alive at once.
 *
 * @module
 */
import { wasmBase64 } from "../../wasm/gen/blake3.ts";
import { wasmModule } from "../../wasm/module.ts";

interface B3Exports {
  memory: WebAssembly.Memory;
  arena(size: number): number;
  b3_state_size(): number;
  b3_init(state: number, key: number, flags: number): void;
  b3_update(state: number, input: number, len: number): void;
  b3_finalize(state: number, out: number, outLen: number): void;
  b3_hash(input: number, len: number, out: number): void;
}

const KEYED_HASH = 16;
const DERIVE_KEY_CONTEXT = 32;
const DERIVE_KEY_MATERIAL = 64;

const mod = wasmModule<B3Exports>("blake3", wasmBase64);
const ex = mod.exports;
const STATE = ex.b3_state_size();
/** Arena layout: [0, 64) output, [64, 96) key, [128, 128+STATE) state, then input. */
const OUT = 0;
const KEY = 64;
const ST = 128;
const IN = (ST + STATE + 15) & ~15;
/** Larger inputs are fed in pieces of this size, so the arena stays small. */
const PIECE = 4 << 20;

function arena(inputLen: number): number {
  return mod.arena(IN + Math.min(inputLen, PIECE));
}

export interface Blake3Hasher {
  update(data: Uint8Array): Blake3Hasher;
  /** Returns `outLength` bytes (default 32). The hasher may keep being updated afterwards. */
  digest(outLength?: number): Uint8Array;
}

/** BLAKE3-256 of `data`. */
export function blake3(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  blake3Into(data, out, 0);
  return out;
}

/** Writes BLAKE3-256 of `data` into `out` at `at`, allocating nothing. */
export function blake3Into(data: Uint8Array, out: Uint8Array, at: number): void {
  if (data.length > PIECE) {
    out.set(createBlake3().update(data).digest(), at);
    return;
  }
  const base = arena(data.length);
  const mem = mod.bytes();
  mem.set(data, base + IN);
  ex.b3_hash(base + IN, data.length, base + OUT);
  out.set(mem.subarray(base + OUT, base + OUT + 32), at);
}

/**
 * The zero-copy interface: a view of `n` bytes inside the hasher's WebAssembly memory. Read
 * input straight into it, then call `blake3InPlace(n, ...)`. The view is valid until the next
 * call into this module (memory may move when it grows).
 */
export function blake3Input(n: number): Uint8Array {
  const base = mod.arena(IN + n);
  return mod.bytes().subarray(base + IN, base + IN + n);
}

/** BLAKE3-256 of the first `n` bytes of `blake3Input(n)`'s view, into `out` at `at`. */
export function blake3InPlace(n: number, out: Uint8Array, at: number): void {
  const base = mod.arena(IN + n);
  ex.b3_hash(base + IN, n, base + OUT);
  out.set(mod.bytes().subarray(base + OUT, base + OUT + 32), at);
}

/** Keyed BLAKE3-256 (a MAC / PRF); `key` must be 32 bytes. */
export function blake3Keyed(key: Uint8Array, data: Uint8Array): Uint8Array {
  return createBlake3(key).update(data).digest();
}

/** BLAKE3 derive_key: a 32-byte key from a context string and key material. */
export function blake3DeriveKey(context: string, material: Uint8Array, outLength = 32): Uint8Array {
  const ctxKey = start(null, DERIVE_KEY_CONTEXT).update(new TextEncoder().encode(context))
    .digest();
  return start(ctxKey, DERIVE_KEY_MATERIAL).update(material).digest(outLength);
}

/** An incremental hasher; pass a 32-byte key for keyed mode. */
export function createBlake3(key?: Uint8Array): Blake3Hasher {
  if (key && key.length !== 32) throw new RangeError("BLAKE3 key must be 32 bytes");
  return start(key ?? null, key ? KEYED_HASH : 0);
}

function start(key: Uint8Array | null, flags: number): Blake3Hasher {
  const state = new Uint8Array(STATE);
  {
    const base = arena(0);
    const mem = mod.bytes();
    if (key) mem.set(key, base + KEY);
    ex.b3_init(base + ST, key ? base + KEY : 0, flags);
    state.set(mem.subarray(base + ST, base + ST + STATE));
  }
  return {
    update(data) {
      const base = arena(data.length);
      const mem = mod.bytes();
      mem.set(state, base + ST);
      for (let off = 0; off < data.length; off += PIECE) {
        const piece = data.subarray(off, Math.min(data.length, off + PIECE));
        mem.set(piece, base + IN);
        ex.b3_update(base + ST, base + IN, piece.length);
      }
      state.set(mem.subarray(base + ST, base + ST + STATE));
      return this;
    },
    digest(outLength = 32) {
      if (!Number.isInteger(outLength) || outLength < 1 || outLength > PIECE) {
        throw new RangeError(`BLAKE3 output length must be 1..${PIECE}`);
      }
      const base = arena(outLength);
      const mem = mod.bytes();
      mem.set(state, base + ST);
      ex.b3_finalize(base + ST, base + IN, outLength);
      return mem.slice(base + IN, base + IN + outLength);
    },
  };
}

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += bytes[i].toString(16).padStart(2, "0");
  return s;
}
