/**
 * Opening and reading archives. `openArchive` takes a path or any ByteSource, validates the
 * header and master index, and returns an Archive whose `read(stream, offset, length)` serves
 * any byte range: a binary search over the master index finds the page, a binary search over
 * the page finds the block; pages and decompressed blocks sit in byte-sized LRU caches; every
 * block's BLAKE3 is checked when it is decoded.
 *
 * @module
 */
import { ensure, HexzError, LOCKED } from "../errors.ts";
import { type ByteSource, fileSource, readExact } from "../io/source.ts";
import { expectLocation, expectOptions } from "../args.ts";
import { decodeHeader, formatUuid, type Header, type ParentRef } from "../format/header.ts";
import { decodeMaster, pageEnd, type PageRef } from "../format/master.ts";
import { decodePage, type Page, pageLength } from "../format/page.ts";
import { type BlockEntry, ENTRY_FLAG_ENCRYPTED, ENTRY_FLAG_INHERITED } from "../format/entry.ts";
import { equalBytes } from "../format/bytes.ts";
import {
  CODEC,
  FEATURE,
  HASH_SIZE,
  HEADER_SIZE,
  KIND,
  MAGIC,
  MAX_DICTIONARY,
  MAX_FILE_TABLE,
  MAX_METADATA,
  type StreamName,
  STREAMS,
} from "../format/constants.ts";
import { blake3, toHex } from "../hash/blake3.ts";
import { decompressInto, type DictCodec } from "../codec/codec.ts";
import { type ArchiveKeys, SEAL_OVERHEAD, unlock } from "../crypto/keys.ts";
import { createLru } from "./lru.ts";
import { ancestorOf } from "./chain.ts";

export type StreamRef = StreamName | number;

/** A block as the reader sees it: its position in the stream and its entry. */
export interface BlockInfo {
  stream: number;
  index: number;
  offset: number;
  entry: BlockEntry;
}

/** Hooks that let callers add what the core does not know about (parents, keys, dicts). */
export interface OpenOptions {
  /** Decompressed-block cache size in bytes (default 64 MiB). */
  cacheBytes?: number;
  /** Index-page cache size in bytes (default 16 MiB, about 70 full pages). */
  pageCacheBytes?: number;
  /** Finds and opens the parent of a thin archive; must check it is the recorded one. */
  resolveParent?: (ref: ParentRef, child: Archive) => Promise<Archive>;
  /** Builds the dictionary codec from the archive's dictionary section. */
  loadDictionary?: (dict: Uint8Array, level: number) => Promise<DictCodec>;
  /**
   * The password of an encrypted archive (and of its parents, which share it). Without it (or
   * `key`) an encrypted archive opens for its header alone: reading anything else fails with
   * HexzError("password"). A wrong one fails the open with HexzError("password").
   */
  password?: string;
  /** Instead of the password: the chain's 32-byte password key (`keys.chain.key`). */
  key?: Uint8Array;
}

export interface Archive {
  readonly source: ByteSource;
  readonly header: Header;
  readonly pages: readonly PageRef[];
  /** Logical size of a stream in bytes. */
  size(stream: StreamRef): number;
  /** Exactly `length` bytes at `offset`; throws if the range passes the end of the stream. */
  read(stream: StreamRef, offset: number, length: number): Promise<Uint8Array>;
  /** The decoded, verified bytes of one block. */
  readBlock(stream: StreamRef, index: number): Promise<Uint8Array>;
  /** The entry and offset of one block. */
  block(stream: StreamRef, index: number): Promise<BlockInfo>;
  /** Every block of a stream in order. */
  blocks(stream: StreamRef): AsyncGenerator<BlockInfo>;
  /** A page of the index (decoded and verified), by master record number. */
  page(i: number): Promise<Page>;
  /** The verified bytes of a section, or null if absent. */
  section(kind: "dictionary" | "metadata" | "fileTable"): Promise<Uint8Array | null>;
  /** The parsed JSON metadata, or null. */
  metadata(): Promise<unknown>;
  /** The parent archive of a thin archive (opened on first use), or null. */
  parent(): Promise<Archive | null>;
  /** Encrypted archives opened with the password: their keys (thin children inherit the
   * chain from them). Null otherwise. */
  readonly keys?: ArchiveKeys | null;
  close(): void;
}

/** Blocks a `read` keeps in flight. */
const READ_AHEAD = 8;

/** KDF results per options object, so the archives of one chain run the KDF once. */
const derivedKeys = new WeakMap<OpenOptions, Map<string, Uint8Array>>();

function lockedError(name: string): HexzError {
  return new HexzError("password", `${name}: ${LOCKED} (OpenOptions.password or key)`);
}

export function resolveStream(s: StreamRef): number {
  const id = typeof s === "number" ? s : STREAMS.indexOf(s);
  if (!(Number.isInteger(id) && id >= 0 && id < STREAMS.length)) {
    throw new HexzError("usage", `unknown stream '${s}' (expected disk or memory)`);
  }
  return id;
}

/** Opens an archive from a path or a byte source. The source is owned by the archive. */
export async function openArchive(
  input: string | ByteSource,
  opts: OpenOptions = {},
): Promise<Archive> {
  expectLocation(input, "openArchive");
  expectOptions(opts, "openArchive: options");
  const source = typeof input === "string" ? await fileSource(input) : input;
  try {
    return await openFromSource(source, opts);
  } catch (e) {
    source.close();
    // Named once: errors of the source itself (a file's, a URL's) start with its name already.
    if (e instanceof HexzError && !e.message.startsWith(`${source.name}: `)) {
      throw new HexzError(e.code, `${source.name}: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

async function openFromSource(source: ByteSource, opts: OpenOptions): Promise<Archive> {
  let closed = false;
  /** Reads after close() fail with this, not with what the closed file would say. */
  const alive = () => {
    if (closed) throw new HexzError("usage", `${source.name}: the archive is closed`);
  };
  /** Exactly the bytes asked for; a read under way when the archive is closed fails with the
   * archive's own error (whether the source failed meanwhile or not). */
  async function readSource(offset: number, length: number): Promise<Uint8Array> {
    alive();
    let bytes: Uint8Array;
    try {
      bytes = await readExact(source, offset, length);
    } catch (e) {
      alive();
      throw e;
    }
    alive();
    return bytes;
  }

  if (source.size < HEADER_SIZE) {
    const head = await readSource(0, Math.min(4, source.size));
    throw equalBytes(head, MAGIC)
      ? new HexzError("corrupt", `truncated: ${source.size} bytes is shorter than the header`)
      : new HexzError("format", "not a hexz archive");
  }
  const headerBytes = await readSource(0, HEADER_SIZE);
  const header = decodeHeader(headerBytes, source.size);
  // An encrypted archive is unlocked (key check, then header MAC) before anything else is read.
  let keys: ArchiveKeys | null = null;
  if (header.encryption && (opts.password !== undefined || opts.key !== undefined)) {
    let cache = derivedKeys.get(opts);
    if (!cache) derivedKeys.set(opts, cache = new Map());
    keys = await unlock(header.encryption, headerBytes, opts, cache);
  }
  const encrypted = (header.features & FEATURE.encrypted) !== 0;
  const sealOverhead = encrypted ? SEAL_OVERHEAD : 0;
  const pages = decodeMaster(await readSource(header.master.offset, header.master.length), header);
  const pageCache = createLru<number, Page>(opts.pageCacheBytes ?? 16 * 1024 * 1024);
  const blockCache = createLru<string, Uint8Array>(opts.cacheBytes ?? 64 * 1024 * 1024);
  const inflight = new Map<string, Promise<Uint8Array>>();
  const sections = new Map<string, Uint8Array | null>();
  let dict: DictCodec | null = null;
  // One load for all the reads that need it at once (each load takes codec memory that only
  // close() gives back: loading per concurrent read leaked it until the process ran out).
  let dictLoading: Promise<DictCodec> | null = null;
  let parentArchive: Promise<Archive | null> | null = null;

  /** Page loads under way: reads that need the same page at once share its load. */
  const pageLoads = new Map<number, Promise<Page>>();

  async function page(i: number): Promise<Page> {
    alive();
    if (!(Number.isInteger(i) && i >= 0 && i < pages.length)) {
      throw new HexzError("usage", `${source.name}: page ${i} does not exist`);
    }
    const hit = pageCache.get(i);
    if (hit) return hit;
    let load = pageLoads.get(i);
    if (!load) {
      load = loadPage(i).finally(() => pageLoads.delete(i));
      pageLoads.set(i, load);
    }
    return await load;
  }

  async function loadPage(i: number): Promise<Page> {
    const ref = pages[i];
    const what = `${source.name}: ${STREAMS[ref.stream]} index page ${i}`;
    if (encrypted && !keys) throw lockedError(source.name);
    let bytes = await readSource(ref.offset, ref.length);
    // The page's own checksum (its last 32 bytes, verified by decodePage) is its hash; in an
    // encrypted archive it covers the stored (encrypted) page, checked before decrypting.
    ensure(
      equalBytes(bytes.subarray(bytes.length - 32), ref.hash),
      `${what}: hash differs from the master index`,
    );
    if (keys) bytes = await keys.openPage(bytes, ref.offset, what);
    const p = decodePage(bytes, {
      stream: ref.stream,
      firstBlock: ref.firstBlock,
      firstOffset: ref.firstOffset,
      count: ref.count,
      codec: ref.codec,
      ancestors: (header.features & FEATURE.ancestors) !== 0,
      inheritedHashes: (header.features & FEATURE.inheritedHashes) !== 0,
      endOffset: pageEnd(pages, header, i),
      archiveEnd: header.archiveEnd,
      what,
    });
    const inherited = await inheritHashes(p, what);
    alive();
    pageCache.set(i, p, pageLength(ref.count) + ref.count * 48 + inherited);
    return p;
  }

  /**
   * Fills in the hashes of the parent entries that inherit theirs (feature bit 6) from the
   * entries they refer to, in the verified pages of the archive up the chain that holds the
   * block (which fills in its own the same way), and clears their flag: the page then looks
   * as if the hashes had been stored. Returns the bytes the hashes take (one buffer per page,
   * so the page does not keep its ancestors' pages alive).
   */
  async function inheritHashes(p: Page, what: string): Promise<number> {
    let hashes: Uint8Array | null = null;
    for (let k = 0; k < p.entries.length; k++) {
      const e = p.entries[k];
      if (!(e.flags & ENTRY_FLAG_INHERITED)) continue;
      const whatEntry = `${what} entry ${k} (block ${p.firstBlock + k})`;
      hashes ??= new Uint8Array(p.entries.length * HASH_SIZE);
      let from: BlockEntry;
      try {
        const holder = await holderOf(e, whatEntry);
        ensure(
          e.location < holder.header.streams[e.parentStream].blockCount,
          `${whatEntry}: refers to ${
            STREAMS[e.parentStream]
          } block ${e.location} of ${holder.source.name}, which has ${
            holder.header.streams[e.parentStream].blockCount
          }`,
        );
        from = (await holder.block(e.parentStream, e.location)).entry;
      } catch (err) {
        alive(); // closing this archive closes its parent: say this one is closed
        throw err;
      }
      ensure(
        from.logicalLength === e.logicalLength,
        `${whatEntry}: the block it refers to holds ${from.logicalLength} bytes, not ${e.logicalLength}`,
      );
      const hash = hashes.subarray(k * HASH_SIZE, (k + 1) * HASH_SIZE);
      hash.set(from.hash);
      p.entries[k] = { ...e, flags: e.flags & ~ENTRY_FLAG_INHERITED, hash };
    }
    return hashes ? hashes.length : 0;
  }

  /** The archive up the chain that holds the block a parent entry refers to. */
  async function holderOf(e: BlockEntry, what: string): Promise<Archive> {
    const { archive, above } = await ancestorOf(self, e.ancestor + 1);
    if (archive) return archive;
    throw new HexzError(
      "corrupt",
      above === 0
        ? `${what}: refers to a parent the archive lacks`
        : `${what}: refers to an archive ${
          e.ancestor + 1
        } generations up; its chain ends after ${above}`,
    );
  }

  /** Master record number of the page holding `key` (a block index or a logical offset). */
  function findPage(stream: number, key: number, byOffset: boolean): number {
    const s = header.streams[stream];
    let lo = s.firstPage;
    let hi = s.firstPage + s.pageCount - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      const v = byOffset ? pages[mid].firstOffset : pages[mid].firstBlock;
      if (v <= key) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  async function block(streamRef: StreamRef, index: number): Promise<BlockInfo> {
    alive();
    const stream = resolveStream(streamRef);
    const s = header.streams[stream];
    if (!(Number.isSafeInteger(index) && index >= 0 && index < s.blockCount)) {
      throw new HexzError("usage", `${STREAMS[stream]} block ${index} does not exist`);
    }
    const pi = findPage(stream, index, false);
    const p = await page(pi);
    const k = index - p.firstBlock;
    return { stream, index, offset: p.offsets[k], entry: p.entries[k] };
  }

  async function decode(b: BlockInfo): Promise<Uint8Array> {
    const e = b.entry;
    const what = `${source.name}: ${STREAMS[b.stream]} block ${b.index} (offset ${b.offset})`;
    let out: Uint8Array;
    if (e.kind === KIND.zero) {
      return new Uint8Array(e.logicalLength);
    } else if (e.kind === KIND.parent) {
      try {
        const holder = await holderOf(e, what);
        out = await holder.readBlock(e.parentStream, e.location);
      } catch (err) {
        alive(); // closing this archive closes its parent: say this one is closed
        throw err;
      }
      ensure(out.length === e.logicalLength, `${what}: parent block has the wrong length`);
    } else {
      ensure(
        ((e.flags & ENTRY_FLAG_ENCRYPTED) !== 0) === encrypted,
        `${what}: ${
          encrypted ? "unencrypted block in an encrypted" : "encrypted block in a plain"
        } archive`,
      );
      let stored = await readSource(e.location, e.storedLength);
      if (keys) stored = await keys.openBlock(stored, what);
      out = new Uint8Array(e.logicalLength);
      if (e.codec === CODEC.zstdDict && !dict) {
        dictLoading ??= loadDict();
        dictLoading.catch(() => dictLoading = null); // a failed load may be tried again
        dict = await dictLoading;
      }
      alive(); // close() frees the dictionary
      decompressInto(e.codec, stored, out, dict, what);
    }
    const hash = keys ? keys.identify(blake3(out)) : blake3(out);
    if (!equalBytes(hash, e.hash)) {
      throw new HexzError("corrupt", `${what}: BLAKE3 mismatch: the block is damaged`);
    }
    return out;
  }

  async function loadDict(): Promise<DictCodec> {
    const bytes = await section("dictionary");
    if (!bytes) throw new HexzError("corrupt", "a block needs the dictionary, but there is none");
    if (!opts.loadDictionary) {
      throw new HexzError("unsupported", "archive uses a zstd dictionary: no loader configured");
    }
    return await opts.loadDictionary(bytes, header.level);
  }

  async function readBlockInfo(b: BlockInfo): Promise<Uint8Array> {
    if (b.entry.kind === KIND.zero) return new Uint8Array(b.entry.logicalLength);
    const key = `${b.stream}:${b.index}`;
    const hit = blockCache.get(key);
    if (hit) return hit;
    let p = inflight.get(key);
    if (!p) {
      p = decode(b).finally(() => inflight.delete(key));
      inflight.set(key, p);
      const data = await p;
      blockCache.set(key, data, data.length);
      return data;
    }
    return await p;
  }

  async function section(kind: "dictionary" | "metadata" | "fileTable") {
    alive();
    if (sections.has(kind)) return sections.get(kind)!;
    if (kind !== "dictionary" && kind !== "metadata" && kind !== "fileTable") {
      throw new HexzError("usage", `unknown section '${kind}'`);
    }
    const ref = header[kind];
    const max = kind === "dictionary"
      ? MAX_DICTIONARY
      : kind === "metadata"
      ? MAX_METADATA
      : MAX_FILE_TABLE;
    let bytes: Uint8Array | null = null;
    if (ref.length) {
      if (encrypted && !keys) throw lockedError(source.name);
      ensure(
        ref.length <= max + sealOverhead,
        `${source.name}: ${kind} section is too large (${ref.length} bytes)`,
      );
      bytes = await readSource(ref.offset, ref.length);
      ensure(
        equalBytes(blake3(bytes), ref.hash),
        `${source.name}: ${kind} section: checksum mismatch`,
      );
      if (keys) bytes = await keys.openSection(kind, bytes);
    }
    sections.set(kind, bytes);
    return bytes;
  }

  const self: Archive = {
    source,
    header,
    pages,
    size: (s) => header.streams[resolveStream(s)].logicalSize,
    async read(streamRef, offset, length) {
      alive();
      const stream = resolveStream(streamRef);
      const size = header.streams[stream].logicalSize;
      if (
        !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 ||
        length < 0 || offset + length > size
      ) {
        throw new HexzError(
          "usage",
          `read of ${length} bytes at ${offset} is outside the ${
            STREAMS[stream]
          } stream (${size} bytes)`,
        );
      }
      const out = new Uint8Array(length);
      if (length === 0) return out;
      let pi = findPage(stream, offset, true);
      let p = await page(pi);
      // Binary search for the block that holds `offset`.
      let lo = 0;
      let hi = p.entries.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (p.offsets[mid] <= offset) lo = mid;
        else hi = mid - 1;
      }
      let k = lo;
      let pos = offset;
      const end = offset + length;
      // Blocks are fetched a few at a time (decryption and I/O overlap), copied in as they come.
      const pending: Promise<void>[] = [];
      while (pos < end) {
        if (k === p.entries.length) {
          p = await page(++pi);
          k = 0;
        }
        const e = p.entries[k];
        const bStart = p.offsets[k];
        const from = pos - bStart;
        const n = Math.min(e.logicalLength - from, end - pos);
        if (e.kind !== KIND.zero) {
          const at = pos - offset;
          const done = readBlockInfo({ stream, index: p.firstBlock + k, offset: bStart, entry: e })
            .then((data) => out.set(data.subarray(from, from + n), at));
          done.catch(() => {}); // awaited below; not "unhandled" if an earlier one fails first
          pending.push(done);
          if (pending.length >= READ_AHEAD) await pending.shift();
        }
        pos += n;
        k++;
      }
      for (const done of pending) await done;
      return out;
    },
    async readBlock(s, index) {
      // A copy: the cache's own bytes must not be changed by a caller.
      return (await readBlockInfo(await block(s, index))).slice();
    },
    block,
    async *blocks(streamRef) {
      alive();
      const stream = resolveStream(streamRef);
      const s = header.streams[stream];
      for (let i = s.firstPage; i < s.firstPage + s.pageCount; i++) {
        const p = await page(i);
        for (let k = 0; k < p.entries.length; k++) {
          yield { stream, index: p.firstBlock + k, offset: p.offsets[k], entry: p.entries[k] };
        }
      }
    },
    page,
    section,
    keys,
    async metadata() {
      const bytes = await section("metadata");
      if (!bytes) return null;
      try {
        return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
      } catch {
        throw new HexzError("corrupt", "metadata section is not valid UTF-8 JSON");
      }
    },
    parent() {
      if (!header.parent) return Promise.resolve(null);
      if (!parentArchive) {
        const ref = header.parent;
        if (!opts.resolveParent) {
          return Promise.reject(
            new HexzError(
              "parent",
              `thin archive: parent ${ref.path || formatUuid(ref.uuid)} cannot be opened here`,
            ),
          );
        }
        parentArchive = opts.resolveParent(ref, self).then((p) => {
          // The parent is the recorded one (UUID and root hash); its blocks are identified with
          // this archive's chain key, so it must be in the same encryption chain.
          const pe = p.header.encryption;
          const ce = header.encryption;
          if (ce ? !pe || !equalBytes(pe.chainSalt, ce.chainSalt) : pe) {
            p.close();
            throw new HexzError(
              "parent",
              `parent ${ref.path || formatUuid(ref.uuid)} is not encrypted the way its child is`,
            );
          }
          return p;
        });
      }
      return parentArchive;
    },
    close() {
      closed = true;
      if (dict) dict.close?.();
      else dictLoading?.then((d) => d.close?.(), () => {}); // a load still under way
      source.close();
      pageCache.clear();
      blockCache.clear();
      parentArchive?.then((p) => p?.close()).catch(() => {});
    },
  };
  return self;
}

/** Hex of the root hash, for display and ETags. */
export function rootHashHex(a: Archive): string {
  return toHex(a.header.rootHash);
}
