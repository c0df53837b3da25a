/**
 * Overlays: writes on top of a read-only archive, kept in a separate file of 4 KiB blocks.
 * Read-write mounts and the NBD server write here; `commit` turns archive + overlay into a new
 * archive. See docs/FORMAT.md, "Overlay".
 *
 * The file is an append-only log after a 4096-byte header: each record carries a run of whole
 * 4 KiB blocks (or marks them zero) and a BLAKE3 checksum. A crash can only tear the last
 * record; opening replays records up to the first incomplete or damaged one and cuts the file
 * there, so everything flushed before the crash survives and nothing torn is ever read.
 *
 * The overlay of an encrypted archive is version 2: each block is sealed with AES-256-GCM under
 * a key of the writing session (overlay_cipher.ts), so nothing written lands in the clear.
 *
 * A log that is mostly old versions of rewritten blocks is compacted: on a writable open, and
 * while it is written (`onlineCompact`), beside the reads and writes (see startCompaction).
 *
 * @module
 */
import { ensure, HexzError, LOCKED, osReason } from "../errors.ts";
import { equalBytes, getU64, isZero, setU64, view } from "../format/bytes.ts";
import { STREAMS } from "../format/constants.ts";
import { formatUuid } from "../format/header.ts";
import { blake3 } from "../hash/blake3.ts";
import { dirOf, randomSuffix, syncDir, writeAll } from "../io/atomic.ts";
import { trackTemporary } from "../io/temporaries.ts";
import { type FileHandle, open as openHandle } from "node:fs/promises";
import { readSync } from "node:fs";
import { type Archive, resolveStream, type StreamRef } from "../read/archive.ts";
import { expectArchive, expectOptions, expectString } from "../args.ts";
import {
  checkZeroRecordTag,
  openOverlayBlock,
  overlaySessionKey,
  sealOverlayBlock,
  TAG_SIZE,
  zeroRecordTag,
} from "./overlay_cipher.ts";

export const OVERLAY_BLOCK = 4096;

/**
 * The overlay a read-write mount or NBD export of `archivePath` keeps its writes in unless told
 * otherwise, as qemu-img names an overlay after its image: `vm.hxz` gives `vm.hxo` beside it;
 * an archive read from a URL gives its file name's overlay in the working directory.
 */
export function defaultOverlayPath(archivePath: string): string {
  const path = /^[a-z][a-z0-9+.-]*:\/\//i.test(archivePath)
    ? decodeURIComponent(new URL(archivePath).pathname.split("/").pop() || "archive")
    : archivePath;
  return path.endsWith(".hxz") ? path.slice(0, -4) + ".hxo" : path + ".hxo";
}
const HEADER = 4096;

/**
 * Whether the overlay file at `path` holds any record (more than its header); false when it
 * does not exist. A mount, NBD export or boot that created an overlay nobody wrote to removes
 * it on the way out with this: it would only be an empty file to trip over.
 */
export async function overlayWritten(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).size > HEADER;
  } catch {
    return false;
  }
}
const RECORD_HEADER = 64;
const MAGIC = new Uint8Array([0x48, 0x58, 0x4f, 0x56]); // "HXOV"
const RECORD_MAGIC = new Uint8Array([0x48, 0x58, 0x4f, 0x52]); // "HXOR"
/** Version 1: blocks in the clear (unencrypted bases); 2: sealed blocks (encrypted bases). */
const VERSION_PLAIN = 1;
const VERSION_SEALED = 2;
/** Where a version 2 header keeps its file salt. */
const SALT_AT = 80;
const SALT_SIZE = 32;
/** A sealed block as a version 2 data record stores it: ciphertext, then its tag. */
const SEALED_BLOCK = OVERLAY_BLOCK + TAG_SIZE;
/** A record carries at most this many blocks (4 MiB), bounding what a hostile file allocates. */
const MAX_RECORD_BLOCKS = 1024;
/** The longest record: what a crash can leave torn at the end of the log. */
const MAX_RECORD_BYTES = RECORD_HEADER + MAX_RECORD_BLOCKS * OVERLAY_BLOCK;
const KIND_DATA = 0;
const KIND_ZERO = 1;
/** Version 2: starts a writing session; its payload is the session salt. */
const KIND_KEY = 2;

/** Payload bytes of a record. */
function payloadSize(version: number, kind: number, count: number): number {
  if (version === VERSION_PLAIN) return kind === KIND_DATA ? count * OVERLAY_BLOCK : 0;
  return kind === KIND_DATA ? count * SEALED_BLOCK : kind === KIND_ZERO ? TAG_SIZE : SALT_SIZE;
}

export interface OverlayStats {
  /** Distinct 4 KiB blocks changed, per stream. */
  changedBlocks: [number, number];
  /** Of those, blocks whose latest write was zeroes/trim. */
  zeroBlocks: [number, number];
  records: number;
  fileSize: number;
  /** The file size after compaction: only each block's latest content. */
  compactSize: number;
}

export interface Overlay {
  readonly path: string;
  /** Version 2: blocks sealed with a key of the (encrypted) base's password. */
  readonly encrypted: boolean;
  readonly baseUuid: Uint8Array;
  readonly baseRoot: Uint8Array;
  size(stream: StreamRef): number;
  /** Bytes as the overlay presents them: overlay blocks where written, the base elsewhere. */
  read(stream: StreamRef, offset: number, length: number): Promise<Uint8Array>;
  write(stream: StreamRef, offset: number, data: Uint8Array): Promise<void>;
  writeZeroes(stream: StreamRef, offset: number, length: number): Promise<void>;
  /** Makes every completed write durable (fsync). */
  flush(): Promise<void>;
  /** Sorted block numbers changed in a stream. */
  changed(stream: StreamRef): number[];
  stats(): OverlayStats;
  /**
   * Rewrites the log with only each block's latest content (older versions of rewritten
   * blocks are dropped), into a temporary file that replaces this one atomically. Reads and
   * writes go on against the old log while it copies; writes wait only while the blocks
   * written meanwhile are copied and the file is swapped; what comes after goes to the new
   * file. A compaction already running (started by writes) is let finish first.
   */
  compact(): Promise<CompactResult>;
  /**
   * Closes the overlay (flush first to make writes durable). A compaction running in the
   * background is cancelled: the returned promise settles once its temporary file is gone.
   */
  close(): Promise<void>;
}

export interface CompactResult {
  /** File size before and after. */
  before: number;
  after: number;
}

/** What a compaction started by writes (`onlineCompact`) came to, for `onCompact`. */
export type CompactEvent =
  | { ok: true; before: number; after: number }
  | { ok: false; error: HexzError };

/**
 * A writable open compacts the log when this much of it is dead (older versions of blocks
 * written again) and dead bytes outnumber live ones: a VM rewriting the same blocks would
 * otherwise grow its overlay without bound.
 */
export const AUTO_COMPACT_DEAD_BYTES = 64 * 1024 * 1024;

/** Log growth before another exact look at its dead bytes, at least (considerCompaction). */
const CHECK_AGAIN = 64 * 1024;
/** Log growth before another attempt after a compaction failed, at least. */
const RETRY_AFTER = 1024 * 1024;
/** Compaction copies the blocks written during its copy again, without holding writes, while
 * they are more than this many (1 MiB), at most PRE_COPY_PASSES times. */
const FINAL_COPY_BLOCKS = 256;
const PRE_COPY_PASSES = 3;

/** The handle reads of the log go through, and how many reads are using it. */
interface LogReader {
  handle: FileHandle;
  users: number;
  /** Replaced (compaction) or closed: closed as soon as no read uses it. */
  retired: boolean;
}

interface Slot {
  /** File offset of the block's bytes, or -1 for zero. */
  at: number;
  /** Version 2: the session key, record sequence number and index in the record. */
  key?: CryptoKey;
  seq?: number;
  index?: number;
}

/** The header of a new overlay on `base`; `salt` (version 2) when the base is encrypted. */
function encodeOverlayHeader(base: Archive, salt: Uint8Array | null): Uint8Array {
  const b = new Uint8Array(HEADER);
  const dv = view(b);
  b.set(MAGIC, 0);
  dv.setUint16(4, salt ? VERSION_SEALED : VERSION_PLAIN, true);
  dv.setUint32(8, OVERLAY_BLOCK, true);
  b.set(base.header.uuid, 16);
  b.set(base.header.rootHash, 32);
  setU64(dv, 64, base.header.streams[0].logicalSize);
  setU64(dv, 72, base.header.streams[1].logicalSize);
  if (salt) b.set(salt, SALT_AT);
  b.set(blake3(b.subarray(0, HEADER - 32)), HEADER - 32);
  return b;
}

/** A record's 64-byte header, its checksum covering `payload` (null for a zero record). */
function recordHeader(
  stream: number,
  kind: number,
  first: number,
  count: number,
  seq: number,
  payload: Uint8Array | null,
): Uint8Array {
  const rh = new Uint8Array(RECORD_HEADER);
  const dv = view(rh);
  rh.set(RECORD_MAGIC, 0);
  dv.setUint8(4, stream);
  dv.setUint8(5, kind);
  setU64(dv, 8, first);
  dv.setUint32(16, count, true);
  setU64(dv, 24, seq);
  const body = payload ?? new Uint8Array(0);
  const hashed = new Uint8Array(32 + body.length);
  hashed.set(rh.subarray(0, 32));
  hashed.set(body, 32);
  rh.set(blake3(hashed), 32);
  return rh;
}

interface OverlayHeader {
  /** 1 (blocks in the clear) or 2 (sealed). */
  version: number;
  /** Version 2: the file salt; null for version 1. */
  salt: Uint8Array | null;
  baseUuid: Uint8Array;
  baseRoot: Uint8Array;
  sizes: [number, number];
}

function decodeOverlayHeader(b: Uint8Array, path: string): OverlayHeader {
  if (b.length < HEADER || !equalBytes(b.subarray(0, 4), MAGIC)) {
    throw new HexzError("format", `${path}: not a hexz overlay`);
  }
  ensure(
    equalBytes(blake3(b.subarray(0, HEADER - 32)), b.subarray(HEADER - 32, HEADER)),
    `${path}: overlay header checksum mismatch`,
  );
  const dv = view(b);
  const v = dv.getUint16(4, true);
  if (v !== VERSION_PLAIN && v !== VERSION_SEALED) {
    throw new HexzError("format", `${path}: unsupported overlay version ${v}`);
  }
  ensure(dv.getUint32(8, true) === OVERLAY_BLOCK, `${path}: unsupported overlay block size`);
  const reserved = v === VERSION_SEALED ? SALT_AT + SALT_SIZE : SALT_AT;
  ensure(isZero(b.subarray(reserved, HEADER - 32)), `${path}: reserved overlay header bytes set`);
  return {
    version: v,
    salt: v === VERSION_SEALED ? b.slice(SALT_AT, SALT_AT + SALT_SIZE) : null,
    baseUuid: b.slice(16, 32),
    baseRoot: b.slice(32, 64),
    sizes: [getU64(dv, 64, "overlay disk size"), getU64(dv, 72, "overlay memory size")],
  };
}

/**
 * Refuses a path that exists and is not a regular file before it is opened: opening a FIFO
 * would wait for a writer, a device is no overlay. (A missing path is the caller's case.)
 */
function refuseNonFile(path: string): void {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch {
    return;
  }
  if (!st.isFile) {
    throw new HexzError(
      "format",
      `${path}: ${st.isDirectory ? "a directory" : "not a regular file"}, not a hexz overlay`,
    );
  }
}

/** Reads just the header of an overlay (to find or check its base without opening it). */
export async function readOverlayHeader(path: string): Promise<OverlayHeader> {
  expectString(path, "readOverlayHeader");
  let f: Deno.FsFile;
  try {
    refuseNonFile(path);
    f = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof HexzError) throw e;
    if (e instanceof Deno.errors.NotFound) {
      throw new HexzError("not-found", `${path}: no such file`);
    }
    throw new HexzError("io", `${path}: ${osReason(e)}`);
  }
  try {
    const b = new Uint8Array(HEADER);
    let n = 0;
    while (n < HEADER) {
      const r = await f.read(b.subarray(n));
      if (r === null) break;
      n += r;
    }
    return decodeOverlayHeader(b.subarray(0, n), path);
  } finally {
    f.close();
  }
}

export interface OverlayOpenOptions {
  /** Create the file if it does not exist (with `base`'s identity). */
  create?: boolean;
  readOnly?: boolean;
  /**
   * With `readOnly`: open even while a writer holds the overlay, reading its log as it is now.
   * Only for a caller that knows the writer is paused with its writes flushed (a VM stopped
   * over QMP, whose NBD server wrote them): records appended later are not seen.
   */
  writerPaused?: boolean;
  /** Compact a writable overlay on open when its log is mostly dead (default true; see
   * AUTO_COMPACT_DEAD_BYTES). */
  autoCompact?: boolean;
  /**
   * Compact a writable overlay while it is in use, once this many bytes of its log are dead
   * and dead bytes outnumber live ones (default AUTO_COMPACT_DEAD_BYTES; false: never). The
   * live blocks are copied to a new file while reads and writes go on against the old log;
   * only the blocks written meanwhile are copied again while writes wait, then the new file
   * replaces the old one. One compaction at a time; after a failure (a full disk), the old log
   * stays in use and the next attempt waits until the log has grown by the threshold again.
   */
  onlineCompact?: number | false;
  /** Told how each compaction started by writes ended (a failure is reported here only). */
  onCompact?: (event: CompactEvent) => void;
}

/** How a writable overlay compacts itself; servers (NBD, mounts, boot) pass it through. */
export type OverlayCompactOptions = Pick<
  OverlayOpenOptions,
  "autoCompact" | "onlineCompact" | "onCompact"
>;

/**
 * Opens (or creates) the overlay at `path` on top of `base`, which must be the archive it was
 * made for. Replays the log; a torn tail record (crash) is cut off when opened writable, and a
 * log that is mostly dead is compacted (`autoCompact`).
 *
 * The overlay of an encrypted base is encrypted (version 2) and needs the base opened with its
 * password. A version 1 overlay of an encrypted base (written in the clear by hexz before
 * version 2) opened writable is first compacted, which encrypts it.
 */
export async function openOverlay(
  path: string,
  base: Archive,
  opts: OverlayOpenOptions = {},
): Promise<Overlay> {
  expectString(path, "openOverlay");
  expectArchive(base, "openOverlay: base");
  expectOptions(opts, "openOverlay: options");
  if (!opts.readOnly && base.header.encryption && !base.keys) {
    throw new HexzError("password", `${base.source.name}: ${LOCKED}`);
  }
  const online = opts.onlineCompact ?? AUTO_COMPACT_DEAD_BYTES;
  if (online !== false && (!Number.isSafeInteger(online) || online < 0)) {
    throw new HexzError(
      "usage",
      `openOverlay: onlineCompact must be a byte count or false, not ${opts.onlineCompact}`,
    );
  }
  if (opts.onCompact !== undefined && typeof opts.onCompact !== "function") {
    throw new HexzError("usage", "openOverlay: onCompact must be a function");
  }
  let file: Deno.FsFile;
  let created = false;
  try {
    refuseNonFile(path);
    file = await Deno.open(path, { read: true, write: !opts.readOnly });
  } catch (e) {
    if (e instanceof HexzError) throw e;
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new HexzError("io", `${path}: ${osReason(e)}`);
    }
    if (!opts.create || opts.readOnly) {
      throw new HexzError("not-found", `${path}: no such overlay`);
    }
    file = await Deno.open(path, { read: true, write: true, createNew: true, mode: 0o644 });
    const salt = base.header.encryption ? crypto.getRandomValues(new Uint8Array(SALT_SIZE)) : null;
    await writeAll(file, encodeOverlayHeader(base, salt), path);
    await file.sync();
    created = true;
  }
  try {
    // One writer at a time, and no reader while it writes: two writers would each append at
    // their own idea of the end (one overwriting the other's flushed records), and a commit
    // would delete the log under a running server.
    if (!(opts.readOnly && opts.writerPaused) && !file.tryLockSync(!opts.readOnly)) {
      throw new HexzError(
        "exists",
        opts.readOnly
          ? `${path}: being written by a mount or an NBD server; stop it first`
          : `${path}: in use by another mount or NBD server; stop it first`,
      );
    }
    if (!opts.readOnly) removeStaleCompactions(path);
    const ov = await load(path, file, base, !!opts.readOnly, created, {
      threshold: opts.readOnly ? false : online,
      onCompact: opts.onCompact,
    });
    if (!opts.readOnly && base.header.encryption && !ov.encrypted) {
      try {
        await ov.compact(); // encrypts it
      } catch (e) {
        await ov.close();
        throw e;
      }
    } else if (!opts.readOnly && opts.autoCompact !== false) {
      const st = ov.stats();
      const dead = st.fileSize - st.compactSize;
      if (dead >= AUTO_COMPACT_DEAD_BYTES && dead > st.compactSize - HEADER) {
        try {
          await ov.compact();
        } catch (e) {
          await ov.close();
          throw e;
        }
      }
    }
    return ov;
  } catch (e) {
    try {
      file.close();
    } catch { /* closed with the overlay */ }
    throw e;
  }
}

/**
 * Removes what compactions of the overlay at `path` that never ended (the process was killed,
 * the machine crashed) left beside it: `<overlay>.tmp-<8 hex digits>` files. Only the holder
 * of the overlay's write lock compacts it, and the caller holds it, so none of them is in use;
 * each is locked before it is removed all the same (a running compaction holds its file's lock).
 */
function removeStaleCompactions(path: string) {
  const dir = dirOf(path);
  const name = path.slice(path.lastIndexOf("/") + 1);
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return; // an unreadable directory: nothing to tidy
  }
  for (const e of entries) {
    if (!e.isFile || !e.name.startsWith(name) || !STALE.test(e.name.slice(name.length))) continue;
    const stale = `${dir}/${e.name}`;
    try {
      const f = Deno.openSync(stale, { read: true, write: true });
      try {
        if (f.tryLockSync(true)) Deno.removeSync(stale);
      } finally {
        f.close();
      }
    } catch { /* gone meanwhile, or not ours to remove: left as it is */ }
  }
}
const STALE = /^\.tmp-[0-9a-f]{8}$/;

/**
 * Compacts the overlay at `path` (see Overlay.compact): opens it writable on `base`, which
 * waits for no one: it fails if a mount or NBD server has it open.
 */
export async function compactOverlay(path: string, base: Archive): Promise<CompactResult> {
  expectString(path, "compactOverlay");
  expectArchive(base, "compactOverlay: base");
  const ov = await openOverlay(path, base, { autoCompact: false, onlineCompact: false });
  try {
    return await ov.compact();
  } finally {
    await ov.close();
  }
}

/** Runs of consecutive blocks of one kind, each at most one record long. */
function liveRuns(blocks: number[], zero: (b: number) => boolean): [number, number, boolean][] {
  const runs: [number, number, boolean][] = [];
  for (const b of blocks) {
    const z = zero(b);
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === b && last[2] === z && last[1] < MAX_RECORD_BLOCKS) {
      last[1]++;
    } else runs.push([b, 1, z]);
  }
  return runs;
}

async function readAt(file: Deno.FsFile, at: number, n: number): Promise<Uint8Array | null> {
  const b = new Uint8Array(n);
  await file.seek(at, Deno.SeekMode.Start);
  let done = 0;
  while (done < n) {
    const r = await file.read(b.subarray(done));
    if (r === null) return null;
    done += r;
  }
  return b;
}

async function load(
  path: string,
  opened: Deno.FsFile,
  base: Archive,
  readOnly: boolean,
  created: boolean,
  online: { threshold: number | false; onCompact?: (event: CompactEvent) => void },
): Promise<Overlay> {
  let file = opened; // compact() swaps in the rewritten file
  const size = (await file.stat()).size;
  const head = await readAt(file, 0, HEADER);
  if (!head) throw new HexzError("format", `${path}: not a hexz overlay (too short)`);
  const h = decodeOverlayHeader(head, path);
  if (!equalBytes(h.baseUuid, base.header.uuid) || !equalBytes(h.baseRoot, base.header.rootHash)) {
    throw new HexzError(
      "parent",
      `${path}: overlay belongs to archive ${formatUuid(h.baseUuid)}, not to ${base.source.name}`,
    );
  }
  let sealed = h.version === VERSION_SEALED; // compaction may seal a version 1 file
  // Without the base's keys (opened without its password) a version 2 overlay opens read-only
  // for what its record headers tell (which blocks changed, sizes); reading a block it holds,
  // and checking its zero records' tags, needs the keys.
  const locked = () => new HexzError("password", `${base.source.name}: ${LOCKED}`);
  let sessions = 0;
  let fileSalt = h.salt;
  /** Version 2: the key of the session records are being replayed or appended in. */
  let session: CryptoKey | null = null;
  const sessionKey = (file: Uint8Array, salt: Uint8Array) =>
    overlaySessionKey(base.keys!.chain, file, salt);
  /** Bytes from one block to the next in a data record. */
  let stride = sealed ? SEALED_BLOCK : OVERLAY_BLOCK;
  const maps: [Map<number, Slot>, Map<number, Slot>] = [new Map(), new Map()];
  let records = 0;
  let seq = 0;
  let end = HEADER;
  // Replay: stop at the first record that is incomplete or fails its checksum. A crash tears
  // only the last record; `claimed` is where a record that failed said it ends.
  let claimed = -1;
  while (end + RECORD_HEADER <= size) {
    claimed = -1;
    const rh = await readAt(file, end, RECORD_HEADER);
    if (!rh || !equalBytes(rh.subarray(0, 4), RECORD_MAGIC)) break;
    const dv = view(rh);
    const stream = dv.getUint8(4);
    const kind = dv.getUint8(5);
    const count = dv.getUint32(16, true);
    if (stream >= STREAMS.length || kind > (sealed ? KIND_KEY : KIND_ZERO)) break;
    if (
      kind === KIND_KEY
        ? stream !== 0 || count !== 0 || !isZero(rh.subarray(8, 16))
        : count < 1 || count > MAX_RECORD_BLOCKS
    ) break;
    const first = getU64(dv, 8, "overlay record block");
    const payload = payloadSize(h.version, kind, count);
    claimed = end + RECORD_HEADER + payload;
    if (end + RECORD_HEADER + payload > size) break;
    const body = payload ? await readAt(file, end + RECORD_HEADER, payload) : new Uint8Array(0);
    if (!body) break;
    const hasher = new Uint8Array(32 + payload);
    hasher.set(rh.subarray(0, 32));
    hasher.set(body, 32);
    if (!equalBytes(blake3(hasher), rh.subarray(32, 64))) break;
    if ((first + count) * OVERLAY_BLOCK > h.sizes[stream] + OVERLAY_BLOCK - 1) break;
    const recordSeq = getU64(dv, 24, "overlay sequence");
    if (sealed) {
      // Sequence numbers count records from 0 (they are the nonces), and the first record
      // starts a session: a record moved, removed from the middle or keyless is damage.
      if (recordSeq !== seq || (kind !== KIND_KEY && !sessions)) break;
      if (kind === KIND_KEY) {
        sessions++;
        session = base.keys ? await sessionKey(fileSalt!, body) : null;
      } else if (kind === KIND_ZERO && session) {
        await checkZeroRecordTag(
          session,
          recordSeq,
          stream,
          first,
          count,
          body,
          `${path}: overlay record at byte ${end}`,
        );
      }
    }
    for (let i = 0; i < count; i++) {
      maps[stream].set(first + i, {
        at: kind === KIND_DATA ? end + RECORD_HEADER + i * stride : -1,
        ...(session ? { key: session, seq: recordSeq, index: i } : {}),
      });
    }
    seq = recordSeq + 1;
    records++;
    end += RECORD_HEADER + payload;
    claimed = -1; // this record was good: nothing failed (yet)
  }
  // What follows the last good record must be one torn record: more than the longest record
  // could be, or bytes after a record that failed whole, is damage, and replaying only what
  // comes before it would silently drop later writes.
  const rest = size - end;
  // (Version 2: a session's key record and its first data record are written together.)
  const maxTail = sealed
    ? 2 * RECORD_HEADER + SALT_SIZE + MAX_RECORD_BLOCKS * SEALED_BLOCK
    : MAX_RECORD_BYTES;
  if (rest > 0 && ((claimed >= 0 && claimed < size) || rest > maxTail)) {
    throw new HexzError(
      "corrupt",
      `${path}: overlay record at byte ${end} is damaged and ${rest} bytes of records follow it ` +
        "(a crash tears only the last record); refusing to drop later writes",
    );
  }
  // Writes of this open start a session of their own (a key record with a new salt) before
  // their first record: records a crash tore off may have used the next sequence numbers.
  session = null;
  if (end < size && !readOnly) {
    // A torn or damaged tail from a crash: drop it so new records follow intact ones.
    await file.truncate(end);
    await file.sync();
  }
  let fileEnd = end;
  let chain: Promise<unknown> = Promise.resolve();
  /** Changes (writes, flushes, compaction) queued or running: reads issued meanwhile wait. */
  let queued = 0;
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    queued++;
    const p = chain.then(fn).finally(() => queued--);
    chain = p.catch(() => {});
    return p;
  };

  function range(stream: number, offset: number, length: number, what: string) {
    const sz = h.sizes[stream];
    if (
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
      offset + length > sz
    ) {
      throw new HexzError(
        "usage",
        `${what} of ${length} bytes at ${offset} is outside the ${
          STREAMS[stream]
        } stream (${sz} bytes)`,
      );
    }
  }

  // Reads are not queued behind each other: the log's blocks are read with positional reads
  // (pread) through a handle of their own, since the log only grows (a slot, once written,
  // holds its bytes) until compaction replaces the file, whose old handle stays open for the
  // reads still using it.
  let reader: LogReader = { handle: await openHandle(path, "r"), users: 0, retired: false };

  /** Closes a retired handle once no read uses it. */
  function closeIfIdle(r: LogReader) {
    if (r.retired && r.users === 0) r.handle.close().catch(() => {});
  }

  function retire(r: LogReader) {
    r.retired = true;
    closeIfIdle(r);
  }

  /**
   * Blocks [first, first+count) of a stream as the overlay shows them, or as `m` (a copy of
   * the map taken earlier, pointing into the same log) does. `blocking`: the log is read with
   * synchronous preads, for a caller holding writes up anyway: the last step of a compaction
   * copied 300-1000 scattered blocks in 40-230 ms as asynchronous reads, 6-15 ms so (a
   * loaded 2-core machine, 2026-12-07).
   */
  async function readBlocks(
    stream: number,
    first: number,
    count: number,
    m: Map<number, Slot> = maps[stream],
    blocking = false,
  ): Promise<Uint8Array> {
    const out = new Uint8Array(count * OVERLAY_BLOCK);
    const sz = h.sizes[stream];
    // The log read, and how its blocks are laid out, as they are now (compaction swaps them).
    const logStride = stride, logSealed = sealed;
    // The plan is made at once, from one state of the map and the log it points into.
    // [i, j, file offset, the slots of blocks i..j]: a write during the read replaces slots in
    // the map, not the bytes these point to.
    const fromLog: [number, number, number, Slot[]][] = [];
    const fromBase: [number, number][] = [];
    let i = 0;
    while (i < count) {
      const slot = m.get(first + i);
      if (slot) {
        if (slot.at < 0) {
          i++;
          continue;
        }
        // Blocks written together lie together in the log: one read for the run.
        let j = i + 1;
        while (j < count && m.get(first + j)?.at === slot.at + (j - i) * logStride) j++;
        fromLog.push([
          i,
          j,
          slot.at,
          logSealed ? Array.from({ length: j - i }, (_, k) => m.get(first + i + k)!) : [],
        ]);
        i = j;
        continue;
      }
      // A run of blocks the overlay does not have: one read from the base.
      let j = i;
      while (j < count && !m.has(first + j)) j++;
      fromBase.push([i, j]);
      i = j;
    }
    const r = reader;
    r.users++;
    try {
      await Promise.all([
        ...fromLog.map(async ([i, j, at, slots]) => {
          const want = (j - i) * logStride;
          const dst = logSealed ? new Uint8Array(want) : out.subarray(i * logStride, j * logStride);
          let got = 0;
          while (got < want) {
            const bytesRead = blocking
              ? readSync(r.handle.fd, dst, got, want - got, at + got)
              : (await r.handle.read(dst, got, want - got, at + got)).bytesRead;
            if (bytesRead === 0) throw new HexzError("io", `${path}: overlay block vanished`);
            got += bytesRead;
          }
          if (!logSealed) return;
          await Promise.all(Array.from({ length: j - i }, async (_, k) => {
            const b = first + i + k;
            const slot = slots[k];
            if (!slot.key) throw locked();
            out.set(
              await openOverlayBlock(
                slot.key,
                slot.seq!,
                slot.index!,
                stream,
                b,
                dst.subarray(k * logStride, (k + 1) * logStride),
                `${path}: ${STREAMS[stream]} block ${b}`,
              ),
              (i + k) * OVERLAY_BLOCK,
            );
          }));
        }),
        ...fromBase.map(async ([i, j]) => {
          const from = (first + i) * OVERLAY_BLOCK;
          const to = Math.min(sz, (first + j) * OVERLAY_BLOCK);
          if (to > from) out.set(await base.read(stream, from, to - from), i * OVERLAY_BLOCK);
        }),
      ]);
    } catch (e) {
      if (e instanceof HexzError) throw e;
      throw new HexzError("io", `${path}: ${osReason(e)}`);
    } finally {
      r.users--;
      closeIfIdle(r);
    }
    return out;
  }

  /**
   * A record as stored: its header and payload (version 2: sealed under `key`, the blocks
   * given in the clear), and the slots of its blocks at file offset `at`.
   */
  async function encodeRecord(
    stream: number,
    kind: number,
    first: number,
    blocks: Uint8Array | null,
    count: number,
    n: number,
    at: number,
    key: CryptoKey | null,
  ): Promise<[Uint8Array, Uint8Array, Slot[]]> {
    let payload = blocks ?? new Uint8Array(0);
    const step = key ? SEALED_BLOCK : OVERLAY_BLOCK;
    if (key) {
      if (blocks) {
        payload = new Uint8Array(count * SEALED_BLOCK);
        await Promise.all(Array.from({ length: count }, async (_, i) => {
          const plain = blocks.subarray(i * OVERLAY_BLOCK, (i + 1) * OVERLAY_BLOCK);
          payload.set(await sealOverlayBlock(key, n, i, stream, first + i, plain), i * step);
        }));
      } else payload = await zeroRecordTag(key, n, stream, first, count);
    }
    const slots = Array.from({ length: count }, (_, i): Slot => ({
      at: blocks ? at + RECORD_HEADER + i * step : -1,
      ...(key ? { key, seq: n, index: i } : {}),
    }));
    return [recordHeader(stream, kind, first, count, n, payload), payload, slots];
  }

  /** A session's first record (version 2): a new random salt, whose key seals what follows. */
  async function keyRecord(n: number, file: Uint8Array): Promise<[Uint8Array, CryptoKey]> {
    const salt = crypto.getRandomValues(new Uint8Array(SALT_SIZE));
    const bytes = new Uint8Array(RECORD_HEADER + SALT_SIZE);
    bytes.set(recordHeader(0, KIND_KEY, 0, 0, n, salt));
    bytes.set(salt, RECORD_HEADER);
    return [bytes, await sessionKey(file, salt)];
  }

  async function append(
    stream: number,
    kind: number,
    first: number,
    blocks: Uint8Array | null,
    count: number,
  ) {
    if (sealed && !session) {
      // Every writable open seals with a key of its own: sequence numbers after a crash may
      // repeat ones of records torn off (or seen before they were), never under this key.
      const [bytes, key] = await keyRecord(seq, fileSalt!);
      await file.seek(fileEnd, Deno.SeekMode.Start);
      await writeAll(file, bytes, path);
      seq++;
      fileEnd += bytes.length;
      records++;
      session = key;
    }
    const [rh, payload, slots] = await encodeRecord(
      stream,
      kind,
      first,
      blocks,
      count,
      seq,
      fileEnd,
      session,
    );
    try {
      await file.seek(fileEnd, Deno.SeekMode.Start);
      await writeAll(file, rh, path);
      if (payload.length) await writeAll(file, payload, path);
    } catch (e) {
      // Part of it may be in the file: the next record, written over it with the same sequence
      // number, starts a new session, so that number is never sealed twice under one key.
      session = null;
      throw e;
    }
    seq++;
    const m = maps[stream];
    const dirty = running?.dirty[stream];
    slots.forEach((slot, i) => {
      const prev = m.get(first + i);
      if (prev && prev.at >= 0) liveData--;
      if (slot.at >= 0) liveData++;
      m.set(first + i, slot);
      dirty?.add(first + i);
    });
    fileEnd += RECORD_HEADER + payload.length;
    records++;
    considerCompaction();
  }

  function writable() {
    if (readOnly) throw new HexzError("usage", `${path}: overlay opened read-only`);
  }

  /** The latest content of a stream as records: runs of consecutive blocks of one kind. */
  function runsOf(stream: number): [number, number, boolean][] {
    const m = maps[stream];
    return liveRuns([...m.keys()].sort((a, b) => a - b), (b) => m.get(b)!.at < 0);
  }

  interface Compaction {
    /** Blocks written since the blocks being copied were picked, per stream. */
    dirty: [Set<number>, Set<number>];
    done: Promise<CompactResult>;
    /** Stops it at its next step and removes its temporary file now (close()). */
    cancel(): void;
  }
  let running: Compaction | null = null;
  let closed = false;
  /** Blocks holding data (not zero): the live part of the log takes at least these. */
  let liveData = 0;
  for (const m of maps) for (const slot of m.values()) if (slot.at >= 0) liveData++;
  /** Writes look at compacting again once the log reaches this size (after a check or a
   * failure: not on every write). */
  let checkAt = 0;

  /** After a write: starts a compaction when the log is `online.threshold` dead and more. */
  function considerCompaction() {
    const limit = online.threshold;
    if (limit === false || readOnly || closed || running || fileEnd < checkAt) return;
    // A bound first, from counters: dead bytes are at most the log minus the live blocks.
    const liveAtLeast = liveData * (base.header.encryption ? SEALED_BLOCK : OVERLAY_BLOCK);
    const deadAtMost = fileEnd - HEADER - liveAtLeast;
    if (deadAtMost < limit || deadAtMost <= liveAtLeast) return;
    // Then the exact rule of an open (sorting every changed block: not after every write).
    const st = self.stats();
    const dead = st.fileSize - st.compactSize;
    if (dead < limit || dead <= st.compactSize - HEADER) {
      checkAt = fileEnd + Math.max(limit / 8, CHECK_AGAIN);
      return;
    }
    const tell = (event: CompactEvent) => {
      try {
        online.onCompact?.(event);
      } catch { /* the listener's own failure is not the overlay's */ }
    };
    startCompaction().done.then(
      (r) => tell({ ok: true, ...r }),
      (e) => {
        if (closed) return; // cancelled by close(): nothing failed
        // The old log stays in use; try again only once it has grown by the threshold.
        checkAt = fileEnd + Math.max(limit, RETRY_AFTER);
        tell({ ok: false, error: e });
      },
    );
  }

  /**
   * Rewrites the log with each block's latest content into a temporary file, while reads and
   * writes go on against the old log: first every live block as the maps give them now, then
   * (up to PRE_COPY_PASSES times) the blocks written meanwhile; then, with writes waiting,
   * the last ones written, and the new file replaces the old one.
   */
  function startCompaction(): Compaction {
    const tempPath = `${path}.tmp-${randomSuffix()}`;
    const untrack = trackTemporary(tempPath, "file");
    let next: Deno.FsFile | null = null;
    let cancelled = false;
    const gone = () => new HexzError("io", `${path}: compaction cancelled: the overlay was closed`);
    // Closed: its lock is gone with the file, so another process may hold the overlay now; a
    // compaction that went on would rename its copy over that one's writes.
    const stop = () => {
      if (cancelled || closed) throw gone();
    };
    const c: Compaction = {
      dirty: [new Set(), new Set()],
      done: Promise.resolve({ before: 0, after: 0 }),
      cancel() {
        cancelled = true;
        // At once: closing may be the last thing the process does.
        try {
          next?.close();
        } catch { /* closed */ }
        try {
          Deno.removeSync(tempPath);
        } catch { /* not created yet, or already in place */ }
      },
    };
    /** The blocks written since the last call, as the maps give them now. */
    const takeDirty = (): [Map<number, Slot>, Map<number, Slot>] => {
      const d = c.dirty;
      c.dirty = [new Set(), new Set()];
      return [0, 1].map((st) => new Map([...d[st]].map((b) => [b, maps[st].get(b)!]))) as [
        Map<number, Slot>,
        Map<number, Slot>,
      ];
    };
    c.done = (async (): Promise<CompactResult> => {
      try {
        next = await Deno.open(tempPath, { read: true, write: true, createNew: true });
        stop();
        // Locked before it is renamed into place: no one else can open it writable between
        // the rename and our use of it.
        if (!next.tryLockSync(true)) throw new HexzError("io", `${tempPath}: cannot lock`);
        // The new file of an encrypted base is sealed (version 2) with a salt and session
        // key of its own, whatever the old file was: nothing is sealed again under old keys.
        const newSalt = base.header.encryption
          ? crypto.getRandomValues(new Uint8Array(SALT_SIZE))
          : null;
        await writeAll(next, encodeOverlayHeader(base, newSalt), tempPath);
        let key: CryptoKey | null = null;
        let at = HEADER, n = 0;
        if (newSalt) {
          const [bytes, k] = await keyRecord(n++, newSalt);
          stop();
          await writeAll(next, bytes, tempPath);
          at += bytes.length;
          key = k;
        }
        const newMaps: [Map<number, Slot>, Map<number, Slot>] = [new Map(), new Map()];
        /** Appends the blocks of `todo` to the new file, one record per run. */
        const copy = async (todo: [Map<number, Slot>, Map<number, Slot>], blocking = false) => {
          for (let st = 0; st < STREAMS.length; st++) {
            const m = todo[st];
            const blocks = [...m.keys()].sort((a, b) => a - b);
            for (const [first, count, zero] of liveRuns(blocks, (b) => m.get(b)!.at < 0)) {
              const data = zero ? null : await readBlocks(st, first, count, m, blocking);
              stop();
              const [rh, payload, slots] = await encodeRecord(
                st,
                zero ? KIND_ZERO : KIND_DATA,
                first,
                data,
                count,
                n,
                at,
                key,
              );
              stop();
              // Written off the event loop, which serves the reads and writes meanwhile.
              const bytes = new Uint8Array(rh.length + payload.length);
              bytes.set(rh);
              bytes.set(payload, rh.length);
              for (let done = 0; done < bytes.length;) {
                done += await next!.write(bytes.subarray(done)).catch((e) => {
                  throw new HexzError("io", `${tempPath}: cannot write: ${osReason(e)}`);
                });
              }
              slots.forEach((slot, i) => newMaps[st].set(first + i, slot));
              at += RECORD_HEADER + payload.length;
              n++;
            }
          }
        };
        // Every live block as it is now; from here on, writes note the blocks they change.
        c.dirty = [new Set(), new Set()];
        let todo: [Map<number, Slot>, Map<number, Slot>] = [new Map(maps[0]), new Map(maps[1])];
        for (let pass = 0;; pass++) {
          await copy(todo);
          const more = c.dirty[0].size + c.dirty[1].size;
          if (more <= FINAL_COPY_BLOCKS || pass >= PRE_COPY_PASSES) break;
          todo = takeDirty();
        }
        // Written back while writes go on, so that the sync below has only the last blocks
        // to write.
        await next.syncData();
        stop();
        // Writes wait from here: the last blocks written, then the swap.
        return await serial(async () => {
          stop();
          await copy(takeDirty(), true);
          await next!.sync();
          stop();
          const nextReader = await openHandle(tempPath, "r");
          if (cancelled || closed) {
            await nextReader.close();
            throw gone();
          }
          const before = fileEnd;
          try {
            // Synchronous from here to the swap: close() sees the old file or the new one.
            Deno.renameSync(tempPath, path);
          } catch (e) {
            await nextReader.close();
            throw e;
          }
          syncDir(dirOf(path));
          try {
            file.close();
          } catch { /* closed */ }
          file = next!;
          next = null;
          retire(reader);
          reader = { handle: nextReader, users: 0, retired: false };
          maps[0] = newMaps[0];
          maps[1] = newMaps[1];
          liveData = 0;
          for (const m of maps) for (const slot of m.values()) if (slot.at >= 0) liveData++;
          fileEnd = at;
          records = n;
          seq = n;
          fileSalt = newSalt;
          sealed = newSalt !== null;
          stride = sealed ? SEALED_BLOCK : OVERLAY_BLOCK;
          session = key; // later writes continue this session in the new file
          checkAt = 0;
          return { before, after: at };
        });
      } catch (e) {
        if (next) {
          try {
            next.close();
          } catch { /* closed */ }
          await Deno.remove(tempPath).catch(() => {});
        }
        if (cancelled || closed) throw gone();
        // Named for the overlay (the temporary file's name alone would puzzle).
        throw e instanceof HexzError
          ? new HexzError(e.code, `${path}: cannot compact: ${e.message}`, { cause: e })
          : new HexzError("io", `${path}: cannot compact: ${osReason(e)}`);
      } finally {
        untrack();
      }
    })();
    running = c;
    const clear = () => {
      if (running === c) running = null;
    };
    c.done.then(clear, clear);
    return c;
  }

  const self: Overlay = {
    path,
    get encrypted() {
      return fileSalt !== null;
    },
    baseUuid: h.baseUuid,
    baseRoot: h.baseRoot,
    size: (s) => h.sizes[resolveStream(s)],
    read(s, offset, length) {
      const stream = resolveStream(s);
      range(stream, offset, length, "read");
      const go = async () => {
        if (length === 0) return new Uint8Array(0);
        if (maps[stream].size === 0) return await base.read(stream, offset, length);
        const first = Math.floor(offset / OVERLAY_BLOCK);
        const last = Math.floor((offset + length - 1) / OVERLAY_BLOCK);
        const from = offset - first * OVERLAY_BLOCK;
        const blocks = await readBlocks(stream, first, last - first + 1);
        return from === 0 && length === blocks.length ? blocks : blocks.slice(from, from + length);
      };
      // A read sees every write issued before it: behind any queued change, it waits its turn;
      // otherwise reads run side by side.
      return queued > 0 ? serial(go) : go();
    },
    write(s, offset, data) {
      writable();
      const stream = resolveStream(s);
      range(stream, offset, data.length, "write");
      return serial(async () => {
        if (data.length === 0) return;
        const first = Math.floor(offset / OVERLAY_BLOCK);
        const last = Math.floor((offset + data.length - 1) / OVERLAY_BLOCK);
        for (let b = first; b <= last; b += MAX_RECORD_BLOCKS) {
          const n = Math.min(MAX_RECORD_BLOCKS, last - b + 1);
          const lo = Math.max(offset, b * OVERLAY_BLOCK);
          const hi = Math.min(offset + data.length, (b + n) * OVERLAY_BLOCK);
          // Partial blocks at the edges keep their old bytes (read-modify-write).
          const whole = lo === b * OVERLAY_BLOCK && hi === (b + n) * OVERLAY_BLOCK;
          const blocks = whole ? new Uint8Array(n * OVERLAY_BLOCK) : await readBlocks(stream, b, n);
          blocks.set(data.subarray(lo - offset, hi - offset), lo - b * OVERLAY_BLOCK);
          await append(stream, KIND_DATA, b, blocks, n);
        }
      });
    },
    writeZeroes(s, offset, length) {
      writable();
      const stream = resolveStream(s);
      range(stream, offset, length, "write");
      return serial(async () => {
        if (length === 0) return;
        // Whole blocks become zero records; partial edges are written as data.
        const firstWhole = Math.ceil(offset / OVERLAY_BLOCK);
        const endWhole = Math.floor((offset + length) / OVERLAY_BLOCK);
        const edges: [number, number][] = [];
        if (firstWhole >= endWhole) edges.push([offset, length]);
        else {
          if (offset < firstWhole * OVERLAY_BLOCK) {
            edges.push([offset, firstWhole * OVERLAY_BLOCK - offset]);
          }
          if (offset + length > endWhole * OVERLAY_BLOCK) {
            edges.push([endWhole * OVERLAY_BLOCK, offset + length - endWhole * OVERLAY_BLOCK]);
          }
          for (let b = firstWhole; b < endWhole; b += MAX_RECORD_BLOCKS) {
            await append(stream, KIND_ZERO, b, null, Math.min(MAX_RECORD_BLOCKS, endWhole - b));
          }
        }
        // An edge may cross a block boundary (a range with no whole block can span two).
        for (const [o, n] of edges) {
          for (let b = Math.floor(o / OVERLAY_BLOCK); b * OVERLAY_BLOCK < o + n; b++) {
            const start = b * OVERLAY_BLOCK;
            const from = Math.max(o, start), to = Math.min(o + n, start + OVERLAY_BLOCK);
            const block = await readBlocks(stream, b, 1);
            block.fill(0, from - start, to - start);
            await append(stream, KIND_DATA, b, block, 1);
          }
        }
      });
    },
    flush() {
      return serial(() => readOnly ? Promise.resolve() : file.sync());
    },
    changed(s) {
      return [...maps[resolveStream(s)].keys()].sort((a, b) => a - b);
    },
    stats() {
      const zeros = maps.map((m) => [...m.values()].filter((v) => v.at < 0).length);
      let compactSize = HEADER + (base.header.encryption ? RECORD_HEADER + SALT_SIZE : 0);
      const version = base.header.encryption ? VERSION_SEALED : VERSION_PLAIN;
      for (let st = 0; st < STREAMS.length; st++) {
        for (const [, n, zero] of runsOf(st)) {
          compactSize += RECORD_HEADER + payloadSize(version, zero ? KIND_ZERO : KIND_DATA, n);
        }
      }
      return {
        changedBlocks: [maps[0].size, maps[1].size],
        zeroBlocks: [zeros[0], zeros[1]],
        records,
        fileSize: fileEnd,
        compactSize,
      };
    },
    async compact() {
      writable();
      const isClosed = () => new HexzError("usage", `${path}: the overlay is closed`);
      if (closed) throw isClosed();
      // One at a time: one started by writes is let finish, then this one covers what came
      // after it.
      while (running) await running.done.catch(() => {});
      if (closed) throw isClosed();
      return await startCompaction().done;
    },
    close() {
      closed = true;
      const c = running;
      c?.cancel();
      try {
        file.close();
      } catch { /* closed */ }
      if (!reader.retired) retire(reader);
      return c ? c.done.then(() => {}, () => {}) : Promise.resolve();
    },
  };
  if (created) await self.flush();
  return self;
}
