/**
 * Index pages: up to 4096 block entries of one stream, with the logical offset and number of
 * their first block, closed by a BLAKE3-256 checksum. See docs/FORMAT.md, "Index page".
 *
 * @module
 */
import { ensure } from "../errors.ts";
import { blake3 } from "../hash/blake3.ts";
import { equalBytes, getU64, setU64, view } from "./bytes.ts";
import {
  ENTRY_SIZE,
  HASH_SIZE,
  HEADER_SIZE,
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
  /** Logical offset where the page's range ends (next page's first offset, or stream size). */
  endOffset: number;
  archiveEnd: number;
  what: string;
}

/** Decodes a page, checking its checksum and that it is the page the master describes. */
export function decodePage(bytes: Uint8Array, x: PageExpectation): Page {
  const what = x.what;
  ensure(bytes.length === pageLength(x.count), `${what}: length ${bytes.length} is wrong`);
  const body = bytes.subarray(0, bytes.length - HASH_SIZE);
  ensure(
    equalBytes(blake3(body), bytes.subarray(bytes.length - HASH_SIZE)),
    `${what}: checksum mismatch`,
  );
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
    );
    entries[i] = e;
    offsets[i] = pos;
    pos += e.logicalLength;
  }
  offsets[count] = pos;
  ensure(pos === x.endOffset, `${what}: blocks cover up to ${pos}, expected ${x.endOffset}`);
  return { stream, firstBlock, firstOffset, entries, offsets };
}
