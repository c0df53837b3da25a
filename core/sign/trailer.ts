/**
 * The signature trailer: a fixed 152-byte little-endian record appended after `archiveEnd`,
 * outside everything the header covers, and the message it signs. An archive may carry several
 * trailers (one per signing key), back to back. See docs/SECURITY.md, "Signatures".
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { equalBytes, setU64, view } from "../format/bytes.ts";
import type { Header } from "../format/header.ts";
import { blake3 } from "../hash/blake3.ts";

/** "HXSG" */
export const TRAILER_MAGIC = new Uint8Array([0x48, 0x58, 0x53, 0x47]);
export const TRAILER_VERSION = 1;
/** Algorithm id stored in the trailer: 1 = Ed25519 (RFC 8032, pure, no prehash). */
export const ALG_ED25519 = 1;
export const TRAILER_SIZE = 152;
/** Readers refuse files with more trailers than this (a bound on work for hostile files). */
export const MAX_TRAILERS = 64;
/** Domain separation prefix of the signed message: ASCII, then one NUL byte. */
export const MESSAGE_PREFIX = new TextEncoder().encode("hexz signature v1\0");
export const MESSAGE_SIZE = MESSAGE_PREFIX.length + 16 + 32 + 8;

// Field offsets (docs/SECURITY.md, "Trailer").
const O = {
  magic: 0,
  version: 4,
  flags: 6,
  algorithm: 8,
  reserved: 9, // 7 bytes, zero
  keyId: 16,
  signature: 24,
  publicKey: 88,
  checksum: 120,
} as const;
export const TRAILER_OFFSETS = O;

export interface SignatureTrailer {
  /** First 8 bytes of BLAKE3 of the signer's SPKI (DER) public key. */
  keyId: Uint8Array<ArrayBuffer>;
  /** The 64-byte Ed25519 signature over `signedMessage(header)`. */
  signature: Uint8Array<ArrayBuffer>;
  /** The signer's raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array<ArrayBuffer>;
}

/**
 * The exact bytes a signature covers: "hexz signature v1" NUL, archive UUID (16), root hash
 * (32), archiveEnd (u64 LE). 74 bytes.
 */
export function signedMessage(
  h: Pick<Header, "uuid" | "rootHash" | "archiveEnd">,
): Uint8Array<ArrayBuffer> {
  const m = new Uint8Array(MESSAGE_SIZE);
  m.set(MESSAGE_PREFIX, 0);
  let o = MESSAGE_PREFIX.length;
  m.set(h.uuid, o);
  o += 16;
  m.set(h.rootHash, o);
  o += 32;
  setU64(view(m), o, h.archiveEnd);
  return m;
}

/** Encodes one trailer, checksum included. */
export function encodeTrailer(
  t: { keyId: Uint8Array; signature: Uint8Array; publicKey: Uint8Array },
): Uint8Array {
  if (t.keyId.length !== 8 || t.signature.length !== 64 || t.publicKey.length !== 32) {
    throw new RangeError("signature trailer: bad field length");
  }
  const b = new Uint8Array(TRAILER_SIZE);
  const dv = view(b);
  b.set(TRAILER_MAGIC, O.magic);
  dv.setUint16(O.version, TRAILER_VERSION, true);
  dv.setUint16(O.flags, 0, true);
  dv.setUint8(O.algorithm, ALG_ED25519);
  b.set(t.keyId, O.keyId);
  b.set(t.signature, O.signature);
  b.set(t.publicKey, O.publicKey);
  b.set(blake3(b.subarray(0, O.checksum)), O.checksum);
  return b;
}

function bad(what: string): never {
  throw new HexzError("signature", what);
}

/** Decodes one trailer; throws HexzError("signature") naming what is wrong. */
export function decodeTrailer(b: Uint8Array, what = "signature trailer"): SignatureTrailer {
  if (b.length !== TRAILER_SIZE) bad(`${what}: ${b.length} bytes, expected ${TRAILER_SIZE}`);
  if (!equalBytes(blake3(b.subarray(0, O.checksum)), b.subarray(O.checksum))) {
    bad(`${what}: checksum mismatch (the trailer is damaged)`);
  }
  if (!equalBytes(b.subarray(0, 4), TRAILER_MAGIC)) bad(`${what}: bad magic`);
  const dv = view(b);
  const version = dv.getUint16(O.version, true);
  if (version !== TRAILER_VERSION) bad(`${what}: unsupported version ${version}`);
  const flags = dv.getUint16(O.flags, true);
  if (flags !== 0) bad(`${what}: unknown flags 0x${flags.toString(16)}`);
  const alg = dv.getUint8(O.algorithm);
  if (alg !== ALG_ED25519) bad(`${what}: unknown algorithm ${alg}`);
  if (b.subarray(O.reserved, O.keyId).some((x) => x !== 0)) bad(`${what}: reserved bytes set`);
  return {
    keyId: b.slice(O.keyId, O.keyId + 8),
    signature: b.slice(O.signature, O.signature + 64),
    publicKey: b.slice(O.publicKey, O.publicKey + 32),
  };
}

/**
 * Splits the bytes after `archiveEnd` into trailers. The tail must be a whole number of
 * trailers, at most MAX_TRAILERS; each is decoded and checked.
 */
export function decodeTrailers(tail: Uint8Array): SignatureTrailer[] {
  if (tail.length % TRAILER_SIZE !== 0) {
    bad(
      `${tail.length} bytes after the archive end are not whole signature trailers ` +
        `(${TRAILER_SIZE} bytes each)`,
    );
  }
  const n = tail.length / TRAILER_SIZE;
  if (n > MAX_TRAILERS) bad(`${n} signature trailers (at most ${MAX_TRAILERS})`);
  const out: SignatureTrailer[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      decodeTrailer(
        tail.subarray(i * TRAILER_SIZE, (i + 1) * TRAILER_SIZE),
        `signature trailer ${i + 1}`,
      ),
    );
  }
  return out;
}
