/**
 * The master index: one 72-byte record per index page (stream, entry count, first block,
 * first logical offset, page offset and length, page hash), closed by a BLAKE3-256 checksum.
 * The header stores the master's offset, length and that checksum. See docs/FORMAT.md.
 *
 * @module
 */
import { ensure } from "../errors.ts";
import { blake3 } from "../hash/blake3.ts";
import { equalBytes, getU64, setU64, view } from "./bytes.ts";
import {
  FEATURE,
  HASH_SIZE,
  HEADER_SIZE,
  MASTER_HEADER_SIZE,
  MASTER_MAGIC,
  MASTER_RECORD_SIZE,
  PAGE_CODEC,
  PAGE_MAX_ENTRIES,
  STREAMS,
} from "./constants.ts";
import type { Header } from "./header.ts";
import { storedPageLengthFits } from "./page.ts";

export const MASTER_VERSION = 1;

export interface PageRef {
  stream: number;
  count: number;
  firstBlock: number;
  firstOffset: number;
  offset: number;
  /** Stored length: 32 + 56·count + 32, or less for an LZ4 page. */
  length: number;
  /** PAGE_CODEC: how the page's entries are stored. */
  codec: number;
  hash: Uint8Array;
}

export function masterLength(pages: number): number {
  return MASTER_HEADER_SIZE + pages * MASTER_RECORD_SIZE + HASH_SIZE;
}

export function encodeMaster(pages: PageRef[]): Uint8Array {
  const bytes = new Uint8Array(masterLength(pages.length));
  const dv = view(bytes);
  bytes.set(MASTER_MAGIC, 0);
  dv.setUint16(4, MASTER_VERSION, true);
  dv.setUint32(8, pages.length, true);
  let off = MASTER_HEADER_SIZE;
  for (const p of pages) {
    dv.setUint8(off, p.stream);
    dv.setUint8(off + 1, p.codec);
    dv.setUint32(off + 4, p.count, true);
    setU64(dv, off + 8, p.firstBlock);
    setU64(dv, off + 16, p.firstOffset);
    setU64(dv, off + 24, p.offset);
    dv.setUint32(off + 32, p.length, true);
    bytes.set(p.hash, off + 40);
    off += MASTER_RECORD_SIZE;
  }
  bytes.set(blake3(bytes.subarray(0, off)), off);
  return bytes;
}

/**
 * Decodes the master index and checks it against the header: its hash, that each stream's
 * pages are contiguous, in order, cover exactly the stream's blocks and size, and lie inside
 * the archive.
 */
export function decodeMaster(bytes: Uint8Array, h: Header): PageRef[] {
  const what = "master index";
  ensure(bytes.length >= MASTER_HEADER_SIZE + HASH_SIZE, `${what}: too short`);
  const body = bytes.subarray(0, bytes.length - HASH_SIZE);
  const sum = blake3(body);
  ensure(equalBytes(sum, bytes.subarray(bytes.length - HASH_SIZE)), `${what}: checksum mismatch`);
  ensure(equalBytes(sum, h.master.hash), `${what}: hash differs from the one in the header`);
  ensure(equalBytes(bytes.subarray(0, 4), MASTER_MAGIC), `${what}: bad magic`);
  const dv = view(bytes);
  ensure(dv.getUint16(4, true) === MASTER_VERSION, `${what}: unknown version`);
  const n = dv.getUint32(8, true);
  ensure(bytes.length === masterLength(n), `${what}: length does not match ${n} pages`);
  const pages: PageRef[] = [];
  // Record byte 1 is the page codec only in archives with feature bit 4; elsewhere it is a
  // reserved byte that is not read.
  const codecs = (h.features & FEATURE.compressedIndex) !== 0;
  let off = MASTER_HEADER_SIZE;
  for (let i = 0; i < n; i++, off += MASTER_RECORD_SIZE) {
    const w = `${what} record ${i}`;
    const p: PageRef = {
      stream: dv.getUint8(off),
      count: dv.getUint32(off + 4, true),
      firstBlock: getU64(dv, off + 8, `${w} first block`),
      firstOffset: getU64(dv, off + 16, `${w} first offset`),
      offset: getU64(dv, off + 24, `${w} page offset`),
      length: dv.getUint32(off + 32, true),
      codec: codecs ? dv.getUint8(off + 1) : PAGE_CODEC.none,
      hash: bytes.slice(off + 40, off + 72),
    };
    ensure(p.stream < STREAMS.length, `${w}: unknown stream ${p.stream}`);
    ensure(p.count >= 1 && p.count <= PAGE_MAX_ENTRIES, `${w}: bad entry count ${p.count}`);
    ensure(p.codec <= PAGE_CODEC.lz4, `${w}: unknown page codec ${p.codec}`);
    ensure(
      storedPageLengthFits(p.codec, p.count, p.length),
      `${w}: page length disagrees with entry count`,
    );
    ensure(
      p.offset >= HEADER_SIZE && p.offset + p.length <= h.archiveEnd,
      `${w}: page lies outside the archive`,
    );
    pages.push(p);
  }
  h.streams.forEach((s, id) => {
    const w = `${what}: stream ${id}`;
    ensure(s.firstPage + s.pageCount <= n, `${w}: pages out of range`);
    let block = 0;
    let prev = -1;
    for (let i = s.firstPage; i < s.firstPage + s.pageCount; i++) {
      const p = pages[i];
      ensure(p.stream === id, `${w}: page ${i} belongs to stream ${p.stream}`);
      ensure(
        p.firstBlock === block,
        `${w}: page ${i} starts at block ${p.firstBlock}, not ${block}`,
      );
      ensure(
        (prev < 0 ? p.firstOffset === 0 : p.firstOffset > prev) && p.firstOffset < s.logicalSize,
        `${w}: page ${i} starts at offset ${p.firstOffset}, out of order`,
      );
      // That the blocks of each page end exactly where the next page starts is checked when the
      // page is read (decodePage's endOffset).
      prev = p.firstOffset;
      block += p.count;
    }
    ensure(block === s.blockCount, `${w}: pages hold ${block} blocks, header says ${s.blockCount}`);
  });
  return pages;
}

/** The logical offset where page `i` ends. */
export function pageEnd(pages: PageRef[], h: Header, i: number): number {
  const p = pages[i];
  const s = h.streams[p.stream];
  return i + 1 < s.firstPage + s.pageCount ? pages[i + 1].firstOffset : s.logicalSize;
}
