/**
 * Block entries: 56-byte little-endian records, 4096 to an index page. See docs/FORMAT.md,
 * "Block entry".
 *
 * @module
 */
import { ensure } from "../errors.ts";
import { getU64, setU64 } from "./bytes.ts";
import {
  CODEC,
  HASH_SIZE,
  KIND,
  MAX_LOGICAL_BLOCK,
  MAX_STORED_BLOCK,
  STREAMS,
} from "./constants.ts";

export interface BlockEntry {
  /** data/dedup: file offset of the stored bytes; parent: block index in the parent stream. */
  location: number;
  storedLength: number;
  logicalLength: number;
  kind: number;
  codec: number;
  /** bit 0: payload encrypted; bit 1 (parent entries, feature bit 6): the hash is inherited
   * from the referenced block (readers fill it in and clear the bit, core/read/archive.ts). */
  flags: number;
  /** parent: which stream of the parent holds the block. */
  parentStream: number;
  /**
   * parent: which archive up the chain holds it: 0 the parent, 1 the parent's parent, ...
   * (non-zero only with feature bit 5, `ancestors`); 0 for the other kinds.
   */
  ancestor: number;
  /** BLAKE3-256 of the logical bytes (keyed in encrypted archives); all zero in a stored
   * entry with the inherited flag. */
  hash: Uint8Array;
}

export const ENTRY_FLAG_ENCRYPTED = 1;
/** A `parent` entry whose hash field is all zero: its hash is the referenced block's. */
export const ENTRY_FLAG_INHERITED = 2;

export function encodeEntry(dv: DataView, bytes: Uint8Array, off: number, e: BlockEntry): void {
  setU64(dv, off, e.location);
  dv.setUint32(off + 8, e.storedLength, true);
  dv.setUint32(off + 12, e.logicalLength, true);
  dv.setUint8(off + 16, e.kind);
  dv.setUint8(off + 17, e.codec);
  dv.setUint8(off + 18, e.flags);
  dv.setUint8(off + 19, e.parentStream);
  dv.setUint32(off + 20, e.ancestor, true);
  bytes.set(e.hash, off + 24);
}

/**
 * Decodes and validates one entry. `archiveEnd` bounds the stored bytes of data and dedup
 * entries; `ancestors`: the archive has feature bit 5 (parent entries may name an ancestor
 * above the parent); `inherited`: the archive has feature bit 6 (parent entries may inherit
 * their hash, flag bit 1); `what` names the entry in error messages.
 */
export function decodeEntry(
  dv: DataView,
  bytes: Uint8Array,
  off: number,
  archiveEnd: number,
  dataStart: number,
  what: string,
  ancestors = false,
  inherited = false,
): BlockEntry {
  const e: BlockEntry = {
    location: getU64(dv, off, `${what} location`),
    storedLength: dv.getUint32(off + 8, true),
    logicalLength: dv.getUint32(off + 12, true),
    kind: dv.getUint8(off + 16),
    codec: dv.getUint8(off + 17),
    flags: dv.getUint8(off + 18),
    parentStream: dv.getUint8(off + 19),
    ancestor: 0,
    hash: bytes.subarray(off + 24, off + 24 + HASH_SIZE),
  };
  // Byte 20 is the ancestor of a parent entry in an archive with feature bit 5; every other
  // byte of 20..24, and byte 20 elsewhere, is reserved and must be zero.
  const reserved = dv.getUint32(off + 20, true);
  if (ancestors && dv.getUint8(off + 16) === KIND.parent) {
    ensure((reserved & ~0xff) === 0, `${what}: reserved field is not zero`);
    e.ancestor = reserved;
  } else {
    ensure(reserved === 0, `${what}: reserved field is not zero`);
  }
  ensure(e.kind <= KIND.parent, `${what}: unknown block kind ${e.kind}`);
  ensure(e.codec <= CODEC.zstdDict, `${what}: unknown codec ${e.codec}`);
  ensure(
    (e.flags & ~(ENTRY_FLAG_ENCRYPTED | ENTRY_FLAG_INHERITED)) === 0,
    `${what}: unknown flags 0x${e.flags.toString(16)}`,
  );
  if (e.flags & ENTRY_FLAG_INHERITED) {
    ensure(
      inherited,
      `${what}: inherits its hash, but the archive lacks feature bit 6 (inheritedHashes)`,
    );
    ensure(e.kind === KIND.parent, `${what}: only a parent block can inherit its hash`);
    ensure(e.hash.every((b) => b === 0), `${what}: inherits its hash but stores one`);
  }
  ensure(
    e.logicalLength > 0 && e.logicalLength <= MAX_LOGICAL_BLOCK,
    `${what}: logical length ${e.logicalLength} out of range`,
  );
  if (e.kind === KIND.data || e.kind === KIND.dedup) {
    ensure(
      e.storedLength > 0 && e.storedLength <= MAX_STORED_BLOCK &&
        e.location >= dataStart && e.location + e.storedLength <= archiveEnd,
      `${what}: stored bytes (offset ${e.location}, ${e.storedLength} bytes) lie outside the archive`,
    );
    ensure(
      e.codec !== 0 || (e.flags & ENTRY_FLAG_ENCRYPTED) !== 0 ||
        e.storedLength === e.logicalLength,
      `${what}: uncompressed block with stored length ${e.storedLength} != ${e.logicalLength}`,
    );
  } else {
    ensure(
      e.storedLength === 0,
      `${what}: ${e.kind === KIND.zero ? "zero" : "parent"} block with stored bytes`,
    );
    if (e.kind === KIND.zero) ensure(e.location === 0, `${what}: zero block with a location`);
    else ensure(e.parentStream < STREAMS.length, `${what}: bad parent stream ${e.parentStream}`);
  }
  return e;
}
