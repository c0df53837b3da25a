/**
 * The cipher of version 2 overlays (overlays of encrypted archives; docs/FORMAT.md, "Overlay",
 * and docs/SECURITY.md, "Overlays"): each 4 KiB block sealed on its own with AES-256-GCM under
 * a key of the writing session, its 16-byte tag stored right after it.
 *
 * ```
 * session key = BLAKE3-derive(OVERLAY_KEY_CONTEXT,
 *                             password key || chain salt || file salt || session salt)
 * nonce       = record sequence number u64 LE || block index in the record u32 LE
 * AAD         = kind u8 || stream u8 || 0 u16 || block count u32 LE || block number u64 LE
 * ```
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { concatBytes, setU64, view } from "../format/bytes.ts";
import { blake3DeriveKey } from "../hash/blake3.ts";
import { buf, importGcmKey, TAG_SIZE } from "../crypto/aead.ts";
import type { ChainKey } from "../crypto/keys.ts";

/** The BLAKE3 derive_key context of overlay session keys. */
export const OVERLAY_KEY_CONTEXT = "hexz 2026-12 v2 overlay block encryption key";
export { TAG_SIZE };

/** The AES-256-GCM key of one writing session of one overlay file. */
export async function overlaySessionKey(
  chain: ChainKey,
  fileSalt: Uint8Array,
  sessionSalt: Uint8Array,
): Promise<CryptoKey> {
  const material = concatBytes(chain.key, chain.salt, fileSalt, sessionSalt);
  return await importGcmKey(blake3DeriveKey(OVERLAY_KEY_CONTEXT, material));
}

function nonce(seq: number, index: number): Uint8Array<ArrayBuffer> {
  const n = new Uint8Array(12);
  const dv = view(n);
  setU64(dv, 0, seq);
  dv.setUint32(8, index, true);
  return n;
}

function aad(kind: number, stream: number, count: number, block: number): Uint8Array<ArrayBuffer> {
  const a = new Uint8Array(16);
  const dv = view(a);
  dv.setUint8(0, kind);
  dv.setUint8(1, stream);
  dv.setUint32(4, count, true);
  setU64(dv, 8, block);
  return a;
}

/**
 * Seals the `index`-th block of a record (`sequence` number `seq`), block number `block` of
 * `stream`: the 4096-byte ciphertext followed by its tag.
 */
export async function sealOverlayBlock(
  key: CryptoKey,
  seq: number,
  index: number,
  stream: number,
  block: number,
  plain: Uint8Array,
): Promise<Uint8Array> {
  const out = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce(seq, index), additionalData: aad(0, stream, 1, block) },
    key,
    buf(plain),
  );
  return new Uint8Array(out);
}

/** Opens a block sealed by sealOverlayBlock; a wrong tag is HexzError("corrupt"). */
export async function openOverlayBlock(
  key: CryptoKey,
  seq: number,
  index: number,
  stream: number,
  block: number,
  sealed: Uint8Array,
  what: string,
): Promise<Uint8Array> {
  try {
    const out = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: nonce(seq, index), additionalData: aad(0, stream, 1, block) },
      key,
      buf(sealed),
    );
    return new Uint8Array(out);
  } catch {
    throw new HexzError("corrupt", `${what}: authentication failed: the block was changed`);
  }
}

/** The tag of a zero record: AES-256-GCM of nothing, the record's blocks in the AAD. */
export async function zeroRecordTag(
  key: CryptoKey,
  seq: number,
  stream: number,
  first: number,
  count: number,
): Promise<Uint8Array> {
  const out = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce(seq, 0), additionalData: aad(1, stream, count, first) },
    key,
    new Uint8Array(0),
  );
  return new Uint8Array(out);
}

/** Checks a zero record's tag; a wrong one is HexzError("corrupt"). */
export async function checkZeroRecordTag(
  key: CryptoKey,
  seq: number,
  stream: number,
  first: number,
  count: number,
  tag: Uint8Array,
  what: string,
): Promise<void> {
  try {
    await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: nonce(seq, 0), additionalData: aad(1, stream, count, first) },
      key,
      buf(tag),
    );
  } catch {
    throw new HexzError("corrupt", `${what}: authentication failed: the record was changed`);
  }
}
