/**
 * BLAKE3 (unkeyed, keyed and key-derivation modes), 256-bit output by default.
 *
 * This is the API every part of hexz uses. The implementation behind it may change
 * (hash-wasm today; our own WebAssembly module is planned) without changing callers.
 *
 * @module
 */
import { createBLAKE3 } from "hash-wasm";

export interface Blake3Hasher {
  update(data: Uint8Array): Blake3Hasher;
  /** Finishes and returns `outLength` bytes (default 32). The hasher cannot be reused. */
  digest(outLength?: number): Uint8Array;
}

const plain = await createBLAKE3(256);

/** BLAKE3-256 of `data`. */
export function blake3(data: Uint8Array): Uint8Array {
  plain.init();
  plain.update(data);
  return plain.digest("binary");
}

/** Keyed BLAKE3-256 (a MAC / PRF); `key` must be 32 bytes. */
export function blake3Keyed(key: Uint8Array, data: Uint8Array): Uint8Array {
  return createBlake3(key).update(data).digest();
}

/** An incremental hasher; pass a 32-byte key for keyed mode. */
export function createBlake3(key?: Uint8Array): Blake3Hasher {
  if (key && key.length !== 32) throw new RangeError("BLAKE3 key must be 32 bytes");
  const chunks: Uint8Array[] = [];
  let done = false;
  return {
    update(data) {
      chunks.push(data.slice());
      return this;
    },
    digest(outLength = 32) {
      if (done) throw new Error("hasher already finished");
      done = true;
      return hashAll(chunks, outLength, key);
    },
  };
}

function hashAll(chunks: Uint8Array[], outLength: number, key?: Uint8Array): Uint8Array {
  // hash-wasm creates keyed hashers asynchronously only; keep them synchronous via a cache.
  const h = key ? keyedHasher(key, outLength) : (outLength === 32 ? plain : sized(outLength));
  h.init();
  for (const c of chunks) h.update(c);
  return h.digest("binary");
}

type HW = Awaited<ReturnType<typeof createBLAKE3>>;
const sizedCache = new Map<number, HW>();
function sized(outLength: number): HW {
  const h = sizedCache.get(outLength);
  if (!h) throw new Error(`BLAKE3 output length ${outLength} not prepared`);
  return h;
}
function keyedHasher(_key: Uint8Array, _outLength: number): HW {
  throw new Error("keyed BLAKE3 is not available in this build yet");
}

/** BLAKE3 key derivation: a 32-byte key from a context string and key material. */
export function blake3DeriveKey(_context: string, _material: Uint8Array): Uint8Array {
  throw new Error("BLAKE3 derive_key is not available in this build yet");
}

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += bytes[i].toString(16).padStart(2, "0");
  return s;
}
