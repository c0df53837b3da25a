/**
 * The sequential archive writer. Payloads are appended to a temporary file after a zeroed
 * 4096-byte placeholder; each stream's entries are collected into pages that are written out
 * as soon as they fill (so memory does not grow with the input); `finish` writes the sections,
 * the master index and finally the header, fsyncs, and moves the file into place. Until the
 * header is written the file does not open as an archive.
 *
 * @module
 */
import { createAtomicFile, writeAll } from "../io/atomic.ts";
import type { BlockEntry } from "../format/entry.ts";
import { encodeHeader, type Header, newHeader, type SectionRef } from "../format/header.ts";
import { encodeMaster, type PageRef } from "../format/master.ts";
import { encodePage } from "../format/page.ts";
import { FEATURE, HEADER_SIZE, KIND, PAGE_MAX_ENTRIES, STREAMS } from "../format/constants.ts";
import { blake3 } from "../hash/blake3.ts";

const BUFFER = 8 * 1024 * 1024;

export interface ArchiveWriter {
  /** Fill in before `finish`: chunking, codec, uuid, message... (streams/sections are ours). */
  readonly header: Header;
  /** Current end of the file: where the next `append` lands. */
  readonly position: number;
  /** Appends payload bytes; returns the file offset where they start. */
  append(bytes: Uint8Array): Promise<number>;
  /** Adds the next block entry of `stream` (entries of a stream arrive in order). */
  addEntry(stream: number, entry: BlockEntry): Promise<void>;
  /** Appends a section's bytes and records it in the header. */
  addSection(kind: "dictionary" | "metadata" | "fileTable", bytes: Uint8Array): Promise<void>;
  /** Writes pages, master and header; fsyncs; moves into place. Returns the final header. */
  finish(): Promise<Header>;
  /** Deletes the temporary file. */
  abort(): Promise<void>;
}

interface StreamState {
  entries: BlockEntry[];
  pages: PageRef[];
  blocks: number;
  offset: number;
  pageFirstBlock: number;
  pageFirstOffset: number;
}

export async function createWriter(path: string, force = false): Promise<ArchiveWriter> {
  const out = await createAtomicFile(path, force);
  const header = newHeader();
  const buf = new Uint8Array(BUFFER);
  let used = 0;
  let flushed = 0; // bytes already in the file
  const streams: StreamState[] = STREAMS.map(() => ({
    entries: [],
    pages: [],
    blocks: 0,
    offset: 0,
    pageFirstBlock: 0,
    pageFirstOffset: 0,
  }));

  async function flush() {
    if (used) {
      await writeAll(out.file, buf.subarray(0, used));
      flushed += used;
      used = 0;
    }
  }

  async function append(bytes: Uint8Array): Promise<number> {
    const at = flushed + used;
    if (bytes.length > BUFFER - used) {
      await flush();
      if (bytes.length >= BUFFER) {
        await writeAll(out.file, bytes);
        flushed += bytes.length;
        return at;
      }
    }
    buf.set(bytes, used);
    used += bytes.length;
    return at;
  }

  async function closePage(id: number) {
    const s = streams[id];
    if (!s.entries.length) return;
    const bytes = encodePage(id, s.pageFirstBlock, s.pageFirstOffset, s.entries);
    const offset = await append(bytes);
    s.pages.push({
      stream: id,
      count: s.entries.length,
      firstBlock: s.pageFirstBlock,
      firstOffset: s.pageFirstOffset,
      offset,
      length: bytes.length,
      hash: bytes.slice(bytes.length - 32),
    });
    s.entries = [];
    s.pageFirstBlock = s.blocks;
    s.pageFirstOffset = s.offset;
  }

  await append(new Uint8Array(HEADER_SIZE));

  return {
    header,
    get position() {
      return flushed + used;
    },
    append,
    async addEntry(id, e) {
      const s = streams[id];
      // Entries may reference the caller's buffers: keep our own copy of the hash.
      s.entries.push({ ...e, hash: e.hash.slice() });
      s.blocks++;
      s.offset += e.logicalLength;
      const info = header.streams[id];
      info.blockCount++;
      info.logicalSize += e.logicalLength;
      if (e.kind === KIND.data) info.storedBytes += e.storedLength;
      else if (e.kind === KIND.zero) info.zeroBlocks++;
      else if (e.kind === KIND.dedup) info.dedupBlocks++;
      else {
        info.parentBlocks++;
        info.parentBytes += e.logicalLength;
      }
      if (s.entries.length === PAGE_MAX_ENTRIES) await closePage(id);
    },
    async addSection(kind, bytes) {
      const ref: SectionRef = {
        offset: await append(bytes),
        length: bytes.length,
        hash: blake3(bytes),
      };
      header[kind] = ref;
      if (kind === "dictionary") header.features |= FEATURE.dictionary;
      if (kind === "fileTable") header.features |= FEATURE.fileTable;
    },
    async finish() {
      try {
        const all: PageRef[] = [];
        for (let id = 0; id < streams.length; id++) {
          await closePage(id);
          header.streams[id].firstPage = all.length;
          header.streams[id].pageCount = streams[id].pages.length;
          all.push(...streams[id].pages);
        }
        const master = encodeMaster(all);
        header.master = {
          offset: await append(master),
          length: master.length,
          hash: master.slice(master.length - 32),
        };
        await flush();
        header.archiveEnd = flushed;
        // Data, pages and master are durable before the header that makes them valid.
        await out.file.syncData();
        const hb = encodeHeader(header);
        await out.file.seek(0, Deno.SeekMode.Start);
        await writeAll(out.file, hb);
        await out.commit();
        return header;
      } catch (e) {
        await out.abort();
        throw e;
      }
    },
    abort: () => out.abort(),
  };
}
