/**
 * Index pages: up to 4096 block entries of one stream, with the logical offset and number of
 * their first block, closed by a BLAKE3-256 checksum. A page whose entries LZ4 halves (runs of
 * zero blocks, whose entries are all alike) is stored with them compressed. See docs/FORMAT.md,
 * "Index page".
 *
 * @module
 */
import { lz4Compress, lz4DecompressInto } from "../codec/lz4.ts";
import { ensure, HexzError } from "../errors.ts";
import { blake3 } from "../hash/blake3.ts";
import { equalBytes, getU64, setU64, view } from "./bytes.ts";
import {
  ENTRY_SIZE,
  HASH_SIZE,
  HEADER_SIZE,
  PAGE_CODEC,
  PAGE_HEADER_SIZE,
  PAGE_MAGIC,
  PAGE_MAX_ENTRIES,
  STREAMS,
} from "./constants.ts";
import { type BlockEntry, decodeEntry, encodeEntry } from "./entry.ts";

export const PAGE_VERSION = 1;

export interface Page {
  stream: number;
  firstBlock: number;
  firstOffset: number;
  entries: BlockEntry[];
  /** offsets[i] = logical offset of entries[i]; offsets[n] = end of the page's range. */
  offsets: number[];
}

export function pageLength(count: number): number {
  return PAGE_HEADER_SIZE + count * ENTRY_SIZE + HASH_SIZE;
}

/** The shortest stored LZ4 page: its header, one byte of compressed entries, its checksum. */
const MIN_PACKED_PAGE = PAGE_HEADER_SIZE + 1 + HASH_SIZE;

/** Whether a page of `count` entries stored with `codec` can be `length` bytes long: exactly
 * its plain length, or for an LZ4 page, at least MIN_PACKED_PAGE and less than that. */
export function storedPageLengthFits(codec: number, count: number, length: number): boolean {
  return codec === PAGE_CODEC.lz4
    ? length >= MIN_PACKED_PAGE && length < pageLength(count)
    : length === pageLength(count);
}

/**
 * The stored form of an encoded page with its entries LZ4-compressed (header unchanged, new
 * checksum over the stored bytes), or null when that would not at least halve the entries:
 * pages of data blocks, whose hashes do not compress, stay as they are.
 */
export function compressPage(page: Uint8Array): Uint8Array | null {
  const entries = page.subarray(PAGE_HEADER_SIZE, page.length - HASH_SIZE);
  const packed = lz4Compress(entries, 1, Math.floor(entries.length / 2) + 1);
  if (!packed) return null;
  const out = new Uint8Array(PAGE_HEADER_SIZE + packed.length + HASH_SIZE);
  out.set(page.subarray(0, PAGE_HEADER_SIZE));
  out.set(packed, PAGE_HEADER_SIZE);
  out.set(blake3(out.subarray(0, out.length - HASH_SIZE)), out.length - HASH_SIZE);
  return out;
}

/** Encodes a page; the last 32 bytes are its checksum (also the hash the master records). */
export function encodePage(
  stream: number,
  firstBlock: number,
  firstOffset: number,
  entries: BlockEntry[],
): Uint8Array {
  if (entries.length === 0 || entries.length > PAGE_MAX_ENTRIES) {
    throw new RangeError(`page with ${entries.length} entries`);
  }
  const bytes = new Uint8Array(pageLength(entries.length));
  const dv = view(bytes);
  bytes.set(PAGE_MAGIC, 0);
  dv.setUint16(4, PAGE_VERSION, true);
  dv.setUint8(6, stream);
  dv.setUint32(8, entries.length, true);
  setU64(dv, 16, firstBlock);
  setU64(dv, 24, firstOffset);
  let off = PAGE_HEADER_SIZE;
  for (const e of entries) {
    encodeEntry(dv, bytes, off, e);
    off += ENTRY_SIZE;
  }
  bytes.set(blake3(bytes.subarray(0, off)), off);
  return bytes;
}

/** What the master index says a page must contain. */
export interface PageExpectation {
  stream: number;
  firstBlock: number;
  firstOffset: number;
  count: number;
  /** PAGE_CODEC of the stored page (default none). */
  codec?: number;
  /** The archive has feature bit 5: parent entries may name an ancestor (entry byte 20). */
  ancestors?: boolean;
  /** The archive has feature bit 6: parent entries may inherit their hash (entry flag bit 1);
   * decodePage leaves those hashes zero, the reader fills them in. */
  inheritedHashes?: boolean;
  /** Logical offset where the page's range ends (next page's first offset, or stream size). */
  endOffset: number;
  archiveEnd: number;
  what: string;
}

/** Decodes a page, checking its checksum and that it is the page the master describes. */
export function decodePage(bytes: Uint8Array, x: PageExpectation): Page {
  const what = x.what;
  const packed = (x.codec ?? PAGE_CODEC.none) === PAGE_CODEC.lz4;
  ensure(
    storedPageLengthFits(x.codec ?? PAGE_CODEC.none, x.count, bytes.length),
    `${what}: length ${bytes.length} is wrong`,
  );
  const body = bytes.subarray(0, bytes.length - HASH_SIZE);
  ensure(
    equalBytes(blake3(body), bytes.subarray(bytes.length - HASH_SIZE)),
    `${what}: checksum mismatch`,
  );
  if (packed) {
    // Verified above; the entries must decode to exactly count entries (the hash slot of the
    // plain form is left zero: nothing reads it).
    const plain = new Uint8Array(pageLength(x.count));
    plain.set(bytes.subarray(0, PAGE_HEADER_SIZE));
    try {
      lz4DecompressInto(
        body.subarray(PAGE_HEADER_SIZE),
        plain.subarray(PAGE_HEADER_SIZE, plain.length - HASH_SIZE),
      );
    } catch {
      throw new HexzError("corrupt", `${what}: compressed entries are malformed`);
    }
    bytes = plain;
  }
  ensure(equalBytes(bytes.subarray(0, 4), PAGE_MAGIC), `${what}: bad magic`);
  const dv = view(bytes);
  ensure(dv.getUint16(4, true) === PAGE_VERSION, `${what}: unknown page version`);
  const stream = dv.getUint8(6);
  ensure(stream < STREAMS.length && stream === x.stream, `${what}: belongs to another stream`);
  const count = dv.getUint32(8, true);
  ensure(count === x.count, `${what}: entry count ${count}, master says ${x.count}`);
  const firstBlock = getU64(dv, 16, `${what} first block`);
  const firstOffset = getU64(dv, 24, `${what} first offset`);
  ensure(
    firstBlock === x.firstBlock && firstOffset === x.firstOffset,
    `${what}: position disagrees with the master index`,
  );
  const entries: BlockEntry[] = new Array(count);
  const offsets: number[] = new Array(count + 1);
  let pos = firstOffset;
  for (let i = 0; i < count; i++) {
    const e = decodeEntry(
      dv,
      bytes,
      PAGE_HEADER_SIZE + i * ENTRY_SIZE,
      x.archiveEnd,
      HEADER_SIZE,
      `${what} entry ${i} (block ${firstBlock + i})`,
      x.ancestors,
      x.inheritedHashes,
    );
    entries[i] = e;
    offsets[i] = pos;
    pos += e.logicalLength;
  }
  offsets[count] = pos;
  ensure(pos === x.endOffset, `${what}: blocks cover up to ${pos}, expected ${x.endOffset}`);
  return { stream, firstBlock, firstOffset, entries, offsets };
}
