/**
 * The sequential archive writer. Payloads are appended to a temporary file after a zeroed
 * 4096-byte placeholder; each stream's entries are collected into pages that are written out
 * as soon as they fill (so memory does not grow with the input); `finish` writes the sections,
 * the master index and finally the header, fsyncs, and moves the file into place. Until the
 * header is written the file does not open as an archive.
 *
 * Given keys (core/crypto/keys.ts), it writes an encrypted archive: block payloads are sealed
 * with AES-256-GCM, several at a time (each block's place is known before its ciphertext, which
 * is always SEAL_OVERHEAD bytes longer, and ciphertexts are written in order as they complete);
 * pages have their entries encrypted, sections are sealed, and the header gets its MAC.
 *
 * @module
 */
import { createAtomicFile, writeAll } from "../io/atomic.ts";
import { alignedBuffer, DIRECT_ALIGN, type DirectFile, openDirect } from "../io/direct.ts";
import { HexzError, osReason } from "../errors.ts";
import { type BlockEntry, ENTRY_FLAG_ENCRYPTED, ENTRY_FLAG_INHERITED } from "../format/entry.ts";
import { encodeHeader, type Header, newHeader, type SectionRef } from "../format/header.ts";
import { encodeMaster, type PageRef } from "../format/master.ts";
import { compressPage, encodePage } from "../format/page.ts";
import {
  FEATURE,
  HEADER_SIZE,
  KIND,
  PAGE_CODEC,
  PAGE_MAX_ENTRIES,
  STREAMS,
} from "../format/constants.ts";
import { blake3 } from "../hash/blake3.ts";
import { type ArchiveKeys, SEAL_OVERHEAD } from "../crypto/keys.ts";

const BUFFER = 8 * 1024 * 1024;
/** The hash field of a parent entry that inherits its hash. */
const NO_HASH = new Uint8Array(32);
/** Block encryptions in flight at most (count and bytes). */
const MAX_SEALING = 64;
const MAX_SEALING_BYTES = 16 * 1024 * 1024;

/** Where a block payload went: the entry fields that describe it. */
export interface StoredBlock {
  location: number;
  storedLength: number;
  flags: number;
}

export interface ArchiveWriter {
  /** Fill in before `finish`: chunking, codec, uuid, message... (streams/sections are ours). */
  readonly header: Header;
  /** Current end of the file: where the next `append` lands. */
  readonly position: number;
  /** Appends payload bytes; returns the file offset where they start. */
  append(bytes: Uint8Array): Promise<number>;
  /** Appends a block payload (sealed in an encrypted archive). `payload` may be reused by the
   * caller once this returns. */
  appendBlock(payload: Uint8Array): Promise<StoredBlock>;
  /** The hash stored for a block with this plain BLAKE3 (keyed in encrypted archives). */
  identify(plainHash: Uint8Array): Uint8Array;
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

export interface WriterOptions {
  /** Replace an existing file. */
  force?: boolean;
  /** Encrypt the archive with these keys. */
  keys?: ArchiveKeys | null;
  /** The files the archive is made from: the output may not be one of them. */
  inputs?: readonly string[];
  /**
   * Write the archive's body around the page cache (core/io/direct.ts) where the file system
   * allows, which saves this thread the copy into the cache but waits for the device on each
   * 8 MiB written: for large packs whose compressing happens on other threads. A function
   * opens the direct descriptor instead of `openDirect` (tests give failing ones).
   */
  direct?: boolean | ((path: string) => DirectFile | null);
}

/** A page-aligned buffer, or null where the memory for one cannot be had. */
function alignedBufferOrNull(size: number): Uint8Array | null {
  try {
    return alignedBuffer(size);
  } catch {
    return null;
  }
}

/** Creates the writer. */
export async function createWriter(path: string, opts: WriterOptions = {}): Promise<ArchiveWriter> {
  const keys = opts.keys ?? null;
  const out = await createAtomicFile(path, !!opts.force, opts.inputs);
  const header = newHeader();
  if (keys) {
    header.features |= FEATURE.encrypted;
    header.encryption = keys.fields();
  }
  // Direct writes go out in whole DIRECT_ALIGN units from an aligned buffer; what is left
  // over waits for the next flush, and the last bytes (and the header) go through the cache.
  const aligned = opts.direct ? alignedBufferOrNull(BUFFER) : null;
  const opener = typeof opts.direct === "function" ? opts.direct : openDirect;
  let direct: DirectFile | null = aligned ? opener(out.tempPath) : null;
  const buf = aligned ?? new Uint8Array(BUFFER);
  let used = 0;
  let flushed = 0; // bytes already in the file
  // Sealed blocks not yet written, in file order; `sealingBytes` is their stored length.
  const sealing: { at: number; length: number; parts: Promise<Uint8Array[]> }[] = [];
  let sealingBytes = 0;
  const streams: StreamState[] = STREAMS.map(() => ({
    entries: [],
    pages: [],
    blocks: 0,
    offset: 0,
    pageFirstBlock: 0,
    pageFirstOffset: 0,
  }));

  async function flush() {
    if (direct) {
      const n = used - (used % DIRECT_ALIGN);
      if (!n) return;
      try {
        direct.writeAt(buf.subarray(0, n), flushed);
      } catch (e) {
        // EINVAL: refused after all (an alignment this device does not take), and the cache
        // serves from where the direct writes stopped. Anything else is a write error.
        if ((e as { code?: string }).code !== "EINVAL") {
          throw new HexzError("io", `${path}: cannot write: ${osReason(e)}`);
        }
        endDirect();
        return await flush();
      }
      out.wrote(n);
      flushed += n;
      buf.copyWithin(0, n, used);
      used -= n;
      return;
    }
    if (used) {
      await writeAll(out.file, buf.subarray(0, used), path);
      out.wrote(used);
      flushed += used;
      used = 0;
    }
  }

  /** Back to writes through the page cache, from where the direct ones stopped. */
  function endDirect() {
    if (!direct) return;
    closeDirect();
    out.file.seekSync(flushed, Deno.SeekMode.Start);
  }

  function closeDirect() {
    direct?.close();
    direct = null;
  }

  /** Writes the oldest sealed block; it lands exactly where its entry says. */
  async function writeSealed() {
    const s = sealing.shift()!;
    sealingBytes -= s.length;
    const parts = await s.parts;
    for (const p of parts) {
      const at = await put(p);
      if (p === parts[0] && at !== s.at) throw new Error("writer: sealed block out of place");
    }
  }

  async function append(bytes: Uint8Array): Promise<number> {
    while (sealing.length) await writeSealed();
    return await put(bytes);
  }

  async function put(bytes: Uint8Array): Promise<number> {
    const at = flushed + used;
    if (direct) {
      // Everything passes through the aligned buffer.
      for (let o = 0; o < bytes.length;) {
        if (used === BUFFER) await flush();
        const k = Math.min(BUFFER - used, bytes.length - o);
        buf.set(bytes.subarray(o, o + k), used);
        used += k;
        o += k;
      }
      return at;
    }
    if (bytes.length > BUFFER - used) {
      await flush();
      if (bytes.length >= BUFFER) {
        await writeAll(out.file, bytes, path);
        out.wrote(bytes.length);
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
    let bytes = encodePage(id, s.pageFirstBlock, s.pageFirstOffset, s.entries);
    // Runs of zero blocks (a sparse disk) give pages of identical entries: those pages are
    // stored compressed (a page of 4096 zero entries: 1022 bytes instead of 224 KiB).
    const packed = compressPage(bytes);
    if (packed) {
      bytes = packed;
      header.features |= FEATURE.compressedIndex;
    }
    while (sealing.length) await writeSealed();
    if (keys) bytes = await keys.sealPage(bytes, flushed + used);
    const offset = await append(bytes);
    s.pages.push({
      stream: id,
      count: s.entries.length,
      firstBlock: s.pageFirstBlock,
      firstOffset: s.pageFirstOffset,
      offset,
      length: bytes.length,
      codec: packed ? PAGE_CODEC.lz4 : PAGE_CODEC.none,
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
      return flushed + used + sealingBytes;
    },
    append,
    async appendBlock(payload) {
      if (!keys) return { location: await append(payload), storedLength: payload.length, flags: 0 };
      const length = payload.length + SEAL_OVERHEAD;
      const at = flushed + used + sealingBytes;
      const parts = keys.sealBlock(payload);
      parts.catch(() => {}); // awaited in order by writeSealed; never "unhandled" meanwhile
      sealing.push({ at, length, parts });
      sealingBytes += length;
      while (sealing.length > MAX_SEALING || sealingBytes > MAX_SEALING_BYTES) {
        await writeSealed();
      }
      return { location: at, storedLength: length, flags: ENTRY_FLAG_ENCRYPTED };
    },
    identify: (plainHash) => keys ? keys.identify(plainHash) : plainHash,
    async addEntry(id, e) {
      const s = streams[id];
      // Entries may reference the caller's buffers: keep our own copy of the hash. A parent
      // entry leaves its hash out (readers inherit the referenced block's, feature bit 6): the
      // entries of a run of unchanged blocks then differ only in their location, and the page
      // compresses to a few bytes per entry.
      if (e.kind === KIND.parent) {
        s.entries.push({ ...e, flags: e.flags | ENTRY_FLAG_INHERITED, hash: NO_HASH });
        header.features |= FEATURE.inheritedHashes;
      } else s.entries.push({ ...e, hash: e.hash.slice() });
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
        if (e.ancestor > 0) header.features |= FEATURE.ancestors;
      }
      if (s.entries.length === PAGE_MAX_ENTRIES) await closePage(id);
    },
    async addSection(kind, bytes) {
      if (keys) bytes = await keys.sealSection(kind, bytes);
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
        endDirect(); // the last partial unit
        await flush();
        header.archiveEnd = flushed;
        // Data, pages and master are durable before the header that makes them valid.
        await out.file.syncData();
        let hb = encodeHeader(header);
        if (keys && header.encryption) {
          header.encryption.headerMac = keys.mac(hb);
          hb = encodeHeader(header);
        }
        await out.file.seek(0, Deno.SeekMode.Start);
        await writeAll(out.file, hb, path);
        await out.commit();
        return header;
      } catch (e) {
        closeDirect();
        await out.abort();
        throw e;
      }
    },
    abort: async () => {
      closeDirect();
      await out.abort();
    },
  };
}
