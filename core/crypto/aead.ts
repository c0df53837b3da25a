/**
 * The ciphers, through WebCrypto: AES-256-GCM for sealed records (blocks and sections), stored as
 * `nonce (12) || ciphertext || tag (16)`, and AES-256-CTR for the entries of index pages, which
 * must keep their length (their integrity comes from the hash chain, see docs/SECURITY.md).
 *
 * A sealed record's nonce is either synthetic (the first 12 bytes of a keyed BLAKE3 of the
 * associated data and the plaintext, so a nonce repeats only when the same bytes are sealed
 * again, giving the same record) or random.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { createBlake3 } from "../hash/blake3.ts";

export const NONCE_SIZE = 12;
export const TAG_SIZE = 16;
/** Bytes a sealed record adds to its plaintext. */
export const SEAL_OVERHEAD = NONCE_SIZE + TAG_SIZE;

/** An AES-256 key usable for GCM, plus (for synthetic nonces) the key of the nonce PRF. */
export interface SealKey {
  aes: CryptoKey;
  /** Keyed-BLAKE3 key for synthetic nonces; null means random nonces. */
  nonceKey: Uint8Array | null;
}

/** `x` typed as WebCrypto wants it (copied only if it lives in a SharedArrayBuffer). */
export function buf(x: Uint8Array): Uint8Array<ArrayBuffer> {
  return x.buffer instanceof ArrayBuffer ? x as Uint8Array<ArrayBuffer> : new Uint8Array(x);
}

export async function importGcmKey(raw: Uint8Array): Promise<CryptoKey> {
  return await crypto.subtle.importKey("raw", buf(raw), "AES-GCM", false, ["encrypt", "decrypt"]);
}

export async function importCtrKey(raw: Uint8Array): Promise<CryptoKey> {
  return await crypto.subtle.importKey("raw", buf(raw), "AES-CTR", false, ["encrypt", "decrypt"]);
}

/** The synthetic nonce of (`aad`, `data`): keyed BLAKE3 over len(aad) u32 || aad || data. */
export function syntheticNonce(key: Uint8Array, aad: Uint8Array, data: Uint8Array): Uint8Array {
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, aad.length, true);
  return createBlake3(key).update(len).update(aad).update(data).digest(NONCE_SIZE);
}

/**
 * Seals `data`: returns [nonce, ciphertext || tag]. `data` may be reused by the caller as soon
 * as this returns (WebCrypto copies it synchronously).
 */
export function seal(
  k: SealKey,
  aad: Uint8Array,
  data: Uint8Array,
): Promise<[Uint8Array, Uint8Array]> {
  const nonce = k.nonceKey
    ? syntheticNonce(k.nonceKey, aad, data)
    : crypto.getRandomValues(new Uint8Array(NONCE_SIZE));
  const ct = crypto.subtle.encrypt(
    { name: "AES-GCM", iv: buf(nonce), additionalData: buf(aad), tagLength: 128 },
    k.aes,
    buf(data),
  );
  return ct.then((c) => [nonce, new Uint8Array(c)]);
}

/** `seal` as one buffer: nonce || ciphertext || tag. */
export async function sealJoined(k: SealKey, aad: Uint8Array, data: Uint8Array) {
  const [nonce, ct] = await seal(k, aad, data);
  const out = new Uint8Array(nonce.length + ct.length);
  out.set(nonce);
  out.set(ct, nonce.length);
  return out;
}

/** Opens a sealed record; a wrong key or any changed byte is HexzError("corrupt"). */
export async function unseal(
  aes: CryptoKey,
  aad: Uint8Array,
  stored: Uint8Array,
  what: string,
): Promise<Uint8Array> {
  if (stored.length < SEAL_OVERHEAD) {
    throw new HexzError("corrupt", `${what}: too short for an encrypted record`);
  }
  try {
    const pt = await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: buf(stored.subarray(0, NONCE_SIZE)),
        additionalData: buf(aad),
        tagLength: 128,
      },
      aes,
      buf(stored.subarray(NONCE_SIZE)),
    );
    return new Uint8Array(pt);
  } catch {
    throw new HexzError("corrupt", `${what}: authentication failed: the record is damaged`);
  }
}

/**
 * AES-256-CTR over `data` with the 16-byte counter block `iv || 0u32` (the last 32 bits count).
 * Encryption and decryption are the same operation.
 */
export async function ctr(key: CryptoKey, iv: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const counter = new Uint8Array(16);
  counter.set(iv.subarray(0, 12));
  const out = await crypto.subtle.encrypt({ name: "AES-CTR", counter, length: 32 }, key, buf(data));
  return new Uint8Array(out);
}
