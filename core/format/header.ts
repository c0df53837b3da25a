/**
 * The archive header: 4096 bytes at offset 0, written last. Its BLAKE3-256 checksum over bytes
 * [0, 4064) is stored at 4064 and is the archive's root hash: it covers the master index hash,
 * which covers every page hash, which covers every block hash. See docs/FORMAT.md, "Header".
 *
 * @module
 */
import { ensure, HexzError } from "../errors.ts";
import { blake3 } from "../hash/blake3.ts";
import { equalBytes, getU64, isZero, setU64, view } from "./bytes.ts";
import {
  CHUNKING,
  CODEC_NAMES,
  FEATURE,
  FORMAT_MAJOR,
  FORMAT_MINOR,
  HASH_SIZE,
  HEADER_CHECKSUM_OFFSET,
  HEADER_SIZE,
  KNOWN_FEATURES,
  MAGIC,
  MAX_BLOCK_SIZE,
  MAX_LOGICAL_BLOCK,
  MAX_MESSAGE,
  MAX_PARENT_PATH,
  MIN_BLOCK_SIZE,
  STREAMS,
} from "./constants.ts";

/** Per-stream totals, kept in the header so `inspect` needs no scan. */
export interface StreamInfo {
  logicalSize: number;
  blockCount: number;
  /** Bytes of block payload physically stored in this archive for the stream. */
  storedBytes: number;
  zeroBlocks: number;
  dedupBlocks: number;
  parentBlocks: number;
  /** Logical bytes of the parent blocks (how much of the stream lives in the parent chain). */
  parentBytes: number;
  /** The stream's pages are master records [firstPage, firstPage + pageCount). */
  firstPage: number;
  pageCount: number;
}

/** Location and hash of an optional section; length 0 means absent. */
export interface SectionRef {
  offset: number;
  length: number;
  hash: Uint8Array;
}

export interface ParentRef {
  uuid: Uint8Array;
  rootHash: Uint8Array;
  /** The path the parent was given as when the child was packed (a hint for finding it). */
  path: string;
}

/**
 * Encryption fields (feature bit 0). The format layer checks their sizes and enumerations; their
 * meaning is core/crypto's (docs/SECURITY.md, "Encryption").
 */
export interface EncryptionFields {
  /** Key-derivation algorithm and parameters (core/crypto/kdf.ts), 48 bytes. */
  kdf: Uint8Array;
  /** Random per archive: input of the archive's subkeys. 32 bytes. */
  archiveSalt: Uint8Array;
  /** Shared along a chain of thin archives: the KDF salt and input of the chain subkeys. */
  chainSalt: Uint8Array;
  /** Keyed BLAKE3 that tells a right password from a wrong one. 32 bytes. */
  keyCheck: Uint8Array;
  /** NONCE_MODE: how block and section nonces are made. */
  nonceMode: number;
  /** CIPHER: 1 = AES-256-GCM records, AES-256-CTR index pages. */
  cipher: number;
  /** Keyed BLAKE3 of header bytes [0, 4064) with this field zeroed. 32 bytes. */
  headerMac: Uint8Array;
}

/** Nonce modes of encrypted archives. */
export const NONCE_MODE = { synthetic: 1, random: 2 } as const;
/** Cipher suites of encrypted archives. */
export const CIPHER = { aes256gcm: 1 } as const;

export interface Header {
  versionMajor: number;
  versionMinor: number;
  features: number;
  uuid: Uint8Array;
  createdAtMs: number;
  /** Length of the archive proper; bytes beyond it are trailers (a signature). */
  archiveEnd: number;
  chunking: number;
  codec: number;
  level: number;
  blockSize: number;
  cdcMin: number;
  cdcAvg: number;
  cdcMax: number;
  master: SectionRef;
  streams: [StreamInfo, StreamInfo];
  dictionary: SectionRef;
  metadata: SectionRef;
  fileTable: SectionRef;
  parent: ParentRef | null;
  encryption: EncryptionFields | null;
  toolVersion: string;
  message: string;
  /** BLAKE3-256 of bytes [0, 4064): the root hash (filled by encode/decode). */
  rootHash: Uint8Array;
}

// Field offsets (docs/FORMAT.md, "Header").
const O = {
  magic: 0,
  major: 4,
  minor: 6,
  headerSize: 8,
  features: 12,
  optional: 16,
  uuid: 24,
  createdAt: 40,
  archiveEnd: 48,
  chunking: 56,
  codec: 57,
  level: 58,
  blockSize: 60,
  cdcMin: 64,
  cdcAvg: 68,
  cdcMax: 72,
  master: 80,
  streams: 128, // 2 x 64
  sections: 256, // dictionary, metadata, file table, reserved: 4 x 48
  parentUuid: 448,
  parentRoot: 464,
  parentPathLen: 496,
  parentPath: 498,
  kdf: 1008,
  archiveSalt: 1056,
  chainSalt: 1088,
  keyCheck: 1120,
  nonceMode: 1152,
  cipher: 1153,
  encReserved1: 1154,
  headerMac: 1168,
  encReserved2: 1200,
  toolVersion: 1264,
  messageLen: 1296,
  message: 1298,
  reservedFrom: 2322,
} as const;
export const HEADER_OFFSETS = O;

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

function emptySection(): SectionRef {
  return { offset: 0, length: 0, hash: new Uint8Array(HASH_SIZE) };
}

export function emptyStreamInfo(): StreamInfo {
  return {
    logicalSize: 0,
    blockCount: 0,
    storedBytes: 0,
    zeroBlocks: 0,
    dedupBlocks: 0,
    parentBlocks: 0,
    parentBytes: 0,
    firstPage: 0,
    pageCount: 0,
  };
}

/** A header with every field at its neutral value; the writer fills it in. */
export function newHeader(): Header {
  return {
    versionMajor: FORMAT_MAJOR,
    versionMinor: FORMAT_MINOR,
    features: 0,
    uuid: new Uint8Array(16),
    createdAtMs: 0,
    archiveEnd: HEADER_SIZE,
    chunking: CHUNKING.fixed,
    codec: 0,
    level: 0,
    blockSize: 0,
    cdcMin: 0,
    cdcAvg: 0,
    cdcMax: 0,
    master: emptySection(),
    streams: [emptyStreamInfo(), emptyStreamInfo()],
    dictionary: emptySection(),
    metadata: emptySection(),
    fileTable: emptySection(),
    parent: null,
    encryption: null,
    toolVersion: "",
    message: "",
    rootHash: new Uint8Array(HASH_SIZE),
  };
}

function putSection(dv: DataView, bytes: Uint8Array, off: number, s: SectionRef) {
  setU64(dv, off, s.offset);
  setU64(dv, off + 8, s.length);
  bytes.set(s.hash, off + 16);
}

function putString(bytes: Uint8Array, off: number, max: number, s: string, what: string): number {
  const b = enc.encode(s);
  if (b.length > max) {
    throw new HexzError("usage", `${what} is too long (${b.length} bytes; at most ${max})`);
  }
  bytes.set(b, off);
  return b.length;
}

/** Encodes a header into 4096 bytes and sets `h.rootHash`. */
export function encodeHeader(h: Header): Uint8Array {
  const bytes = new Uint8Array(HEADER_SIZE);
  const dv = view(bytes);
  bytes.set(MAGIC, O.magic);
  dv.setUint16(O.major, h.versionMajor, true);
  dv.setUint16(O.minor, h.versionMinor, true);
  dv.setUint32(O.headerSize, HEADER_SIZE, true);
  dv.setUint32(O.features, h.features, true);
  bytes.set(h.uuid, O.uuid);
  setU64(dv, O.createdAt, h.createdAtMs);
  setU64(dv, O.archiveEnd, h.archiveEnd);
  dv.setUint8(O.chunking, h.chunking);
  dv.setUint8(O.codec, h.codec);
  dv.setInt8(O.level, h.level);
  dv.setUint32(O.blockSize, h.blockSize, true);
  dv.setUint32(O.cdcMin, h.cdcMin, true);
  dv.setUint32(O.cdcAvg, h.cdcAvg, true);
  dv.setUint32(O.cdcMax, h.cdcMax, true);
  putSection(dv, bytes, O.master, h.master);
  h.streams.forEach((s, i) => {
    const o = O.streams + 64 * i;
    setU64(dv, o, s.logicalSize);
    setU64(dv, o + 8, s.blockCount);
    setU64(dv, o + 16, s.storedBytes);
    setU64(dv, o + 24, s.zeroBlocks);
    setU64(dv, o + 32, s.dedupBlocks);
    setU64(dv, o + 40, s.parentBlocks);
    dv.setUint32(o + 48, s.firstPage, true);
    dv.setUint32(o + 52, s.pageCount, true);
    setU64(dv, o + 56, s.parentBytes);
  });
  putSection(dv, bytes, O.sections, h.dictionary);
  putSection(dv, bytes, O.sections + 48, h.metadata);
  putSection(dv, bytes, O.sections + 96, h.fileTable);
  if (h.parent) {
    bytes.set(h.parent.uuid, O.parentUuid);
    bytes.set(h.parent.rootHash, O.parentRoot);
    const n = putString(bytes, O.parentPath, MAX_PARENT_PATH, h.parent.path, "parent path");
    dv.setUint16(O.parentPathLen, n, true);
  }
  if (h.encryption) {
    const e = h.encryption;
    if (
      e.kdf.length !== 48 || e.archiveSalt.length !== 32 || e.chainSalt.length !== 32 ||
      e.keyCheck.length !== 32 || e.headerMac.length !== 32
    ) {
      throw new RangeError("encryption header fields have the wrong sizes");
    }
    bytes.set(e.kdf, O.kdf);
    bytes.set(e.archiveSalt, O.archiveSalt);
    bytes.set(e.chainSalt, O.chainSalt);
    bytes.set(e.keyCheck, O.keyCheck);
    dv.setUint8(O.nonceMode, e.nonceMode);
    dv.setUint8(O.cipher, e.cipher);
    bytes.set(e.headerMac, O.headerMac);
  }
  putString(bytes, O.toolVersion, 32, h.toolVersion, "tool version");
  const m = putString(bytes, O.message, MAX_MESSAGE, h.message, "message");
  dv.setUint16(O.messageLen, m, true);
  h.rootHash = blake3(bytes.subarray(0, HEADER_CHECKSUM_OFFSET));
  bytes.set(h.rootHash, HEADER_CHECKSUM_OFFSET);
  return bytes;
}

function getSection(dv: DataView, bytes: Uint8Array, off: number, what: string): SectionRef {
  return {
    offset: getU64(dv, off, `${what} offset`),
    length: getU64(dv, off + 8, `${what} length`),
    hash: bytes.slice(off + 16, off + 48),
  };
}

function getString(bytes: Uint8Array, off: number, len: number, what: string): string {
  try {
    return dec.decode(bytes.subarray(off, off + len));
  } catch {
    throw new HexzError("corrupt", `header: ${what} is not valid UTF-8`);
  }
}

/**
 * Decodes and validates a header. `fileSize` is the size of the whole file; every offset is
 * checked against it. Throws HexzError("format") for files that are not hexz archives or need
 * a newer reader, and HexzError("corrupt") for damaged ones.
 */
export function decodeHeader(bytes: Uint8Array, fileSize: number): Header {
  if (bytes.length < HEADER_SIZE || !equalBytes(bytes.subarray(0, 4), MAGIC)) {
    throw new HexzError("format", "not a hexz archive (bad magic)");
  }
  const dv = view(bytes);
  const major = dv.getUint16(O.major, true);
  const minor = dv.getUint16(O.minor, true);
  if (major !== FORMAT_MAJOR) {
    throw new HexzError(
      "format",
      `unsupported format version ${major}.${minor} (this hexz reads version ${FORMAT_MAJOR}.x)`,
    );
  }
  const rootHash = blake3(bytes.subarray(0, HEADER_CHECKSUM_OFFSET));
  ensure(
    equalBytes(rootHash, bytes.subarray(HEADER_CHECKSUM_OFFSET, HEADER_SIZE)),
    "header checksum mismatch: the header is damaged",
  );
  ensure(dv.getUint32(O.headerSize, true) === HEADER_SIZE, "header: bad header size field");
  const features = dv.getUint32(O.features, true);
  if (features & ~KNOWN_FEATURES) {
    throw new HexzError(
      "format",
      `archive uses unknown features (0x${(features & ~KNOWN_FEATURES).toString(16)}): ` +
        `a newer hexz is needed`,
    );
  }
  ensure(
    !(features & FEATURE.ancestors) || (features & FEATURE.thin) !== 0,
    "header: ancestor references without a parent",
  );
  ensure(
    !(features & FEATURE.inheritedHashes) || (features & FEATURE.thin) !== 0,
    "header: inherited hashes without a parent",
  );
  const h = newHeader();
  h.versionMajor = major;
  h.versionMinor = minor;
  h.features = features;
  h.uuid = bytes.slice(O.uuid, O.uuid + 16);
  h.createdAtMs = getU64(dv, O.createdAt, "created-at");
  h.archiveEnd = getU64(dv, O.archiveEnd, "archive end");
  ensure(
    h.archiveEnd >= HEADER_SIZE && h.archiveEnd <= fileSize,
    `header: archive end ${h.archiveEnd} is outside the file (${fileSize} bytes): truncated?`,
  );
  h.chunking = dv.getUint8(O.chunking);
  ensure(h.chunking === CHUNKING.fixed || h.chunking === CHUNKING.fastcdc, "header: bad chunking");
  h.codec = dv.getUint8(O.codec);
  h.level = dv.getInt8(O.level);
  h.blockSize = dv.getUint32(O.blockSize, true);
  h.cdcMin = dv.getUint32(O.cdcMin, true);
  h.cdcAvg = dv.getUint32(O.cdcAvg, true);
  h.cdcMax = dv.getUint32(O.cdcMax, true);
  // What a thin archive on this one must chunk with, so it is held to what pack accepts.
  if (h.chunking === CHUNKING.fixed) {
    ensure(
      h.blockSize >= MIN_BLOCK_SIZE && h.blockSize <= MAX_BLOCK_SIZE,
      `header: block size ${h.blockSize} is outside ${MIN_BLOCK_SIZE}..${MAX_BLOCK_SIZE}`,
    );
  } else {
    ensure(
      h.cdcMin >= 64 && h.cdcMin < h.cdcAvg && h.cdcAvg < h.cdcMax &&
        h.cdcMax <= MAX_LOGICAL_BLOCK && (h.cdcAvg & (h.cdcAvg - 1)) === 0,
      `header: CDC sizes ${h.cdcMin}/${h.cdcAvg}/${h.cdcMax} are not valid`,
    );
  }
  if (!(h.codec in CODEC_NAMES)) {
    throw new HexzError("format", `header: unknown codec ${h.codec} (made by a newer hexz?)`);
  }
  const inside = (s: SectionRef, what: string) =>
    ensure(
      s.length === 0
        ? s.offset === 0
        : s.offset >= HEADER_SIZE && s.offset + s.length <= h.archiveEnd,
      `header: ${what} (offset ${s.offset}, ${s.length} bytes) lies outside the archive`,
    );
  h.master = getSection(dv, bytes, O.master, "master index");
  inside(h.master, "master index");
  for (let i = 0; i < 2; i++) {
    const o = O.streams + 64 * i;
    const what = `${STREAMS[i]} stream`;
    h.streams[i] = {
      logicalSize: getU64(dv, o, `${what} size`),
      blockCount: getU64(dv, o + 8, `${what} block count`),
      storedBytes: getU64(dv, o + 16, `${what} stored bytes`),
      zeroBlocks: getU64(dv, o + 24, `${what} zero blocks`),
      dedupBlocks: getU64(dv, o + 32, `${what} dedup blocks`),
      parentBlocks: getU64(dv, o + 40, `${what} parent blocks`),
      firstPage: dv.getUint32(o + 48, true),
      pageCount: dv.getUint32(o + 52, true),
      parentBytes: getU64(dv, o + 56, `${what} parent bytes`),
    };
    const s = h.streams[i];
    ensure(
      s.zeroBlocks + s.dedupBlocks + s.parentBlocks <= s.blockCount,
      `header: ${what} block counts are inconsistent`,
    );
    ensure(s.storedBytes <= h.archiveEnd, `header: ${what} stored bytes exceed the archive`);
    ensure(s.parentBytes <= s.logicalSize, `header: ${what} parent bytes exceed its size`);
    ensure(
      s.parentBlocks === 0 || (features & FEATURE.thin) !== 0,
      `header: ${what} has parent blocks but no parent`,
    );
    ensure(
      (s.blockCount === 0) === (s.logicalSize === 0) &&
        (s.blockCount === 0) === (s.pageCount === 0),
      `header: ${what} size, blocks and pages disagree`,
    );
  }
  h.dictionary = getSection(dv, bytes, O.sections, "dictionary");
  h.metadata = getSection(dv, bytes, O.sections + 48, "metadata");
  h.fileTable = getSection(dv, bytes, O.sections + 96, "file table");
  inside(h.dictionary, "dictionary");
  inside(h.metadata, "metadata");
  inside(h.fileTable, "file table");
  ensure(
    (h.dictionary.length > 0) === ((features & FEATURE.dictionary) !== 0),
    "header: dictionary flag and dictionary section disagree",
  );
  ensure(
    (h.fileTable.length > 0) === ((features & FEATURE.fileTable) !== 0),
    "header: file table flag and file table section disagree",
  );
  if (features & FEATURE.thin) {
    const n = dv.getUint16(O.parentPathLen, true);
    ensure(n <= MAX_PARENT_PATH, "header: parent path length out of range");
    h.parent = {
      uuid: bytes.slice(O.parentUuid, O.parentUuid + 16),
      rootHash: bytes.slice(O.parentRoot, O.parentRoot + 32),
      path: getString(bytes, O.parentPath, n, "parent path"),
    };
  }
  if (features & FEATURE.encrypted) {
    h.encryption = {
      kdf: bytes.slice(O.kdf, O.kdf + 48),
      archiveSalt: bytes.slice(O.archiveSalt, O.archiveSalt + 32),
      chainSalt: bytes.slice(O.chainSalt, O.chainSalt + 32),
      keyCheck: bytes.slice(O.keyCheck, O.keyCheck + 32),
      nonceMode: dv.getUint8(O.nonceMode),
      cipher: dv.getUint8(O.cipher),
      headerMac: bytes.slice(O.headerMac, O.headerMac + 32),
    };
    const e = h.encryption;
    if (e.cipher !== CIPHER.aes256gcm) {
      throw new HexzError("unsupported", `archive uses unknown cipher ${e.cipher}`);
    }
    ensure(
      e.nonceMode === NONCE_MODE.synthetic || e.nonceMode === NONCE_MODE.random,
      `header: unknown nonce mode ${e.nonceMode}`,
    );
    ensure(
      isZero(bytes.subarray(O.encReserved1, O.headerMac)) &&
        isZero(bytes.subarray(O.encReserved2, O.toolVersion)),
      "header: reserved encryption bytes are not zero",
    );
  } else {
    ensure(
      isZero(bytes.subarray(O.kdf, O.toolVersion)),
      "header: encryption fields are set but the archive is not marked encrypted",
    );
  }
  const tv = bytes.subarray(O.toolVersion, O.toolVersion + 32);
  const tvEnd = tv.indexOf(0);
  h.toolVersion = getString(tv, 0, tvEnd < 0 ? 32 : tvEnd, "tool version");
  const m = dv.getUint16(O.messageLen, true);
  ensure(m <= MAX_MESSAGE, "header: message length out of range");
  h.message = getString(bytes, O.message, m, "message");
  ensure(
    isZero(bytes.subarray(O.reservedFrom, HEADER_CHECKSUM_OFFSET)),
    "header: reserved bytes are not zero (written by a newer, incompatible hexz?)",
  );
  h.rootHash = rootHash;
  return h;
}

/**
 * What the header MAC of an encrypted archive covers: a copy of header bytes [0, 4064) with the
 * MAC field zeroed (the checksum after them is a hash of these bytes and the MAC).
 */
export function headerMacInput(bytes: Uint8Array): Uint8Array {
  const input = bytes.slice(0, HEADER_CHECKSUM_OFFSET);
  input.fill(0, O.headerMac, O.headerMac + HASH_SIZE);
  return input;
}

/** Formats a 16-byte UUID the usual way (8-4-4-4-12 hex). */
export function formatUuid(u: Uint8Array): string {
  const hx = Array.from(u, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hx.slice(0, 8)}-${hx.slice(8, 12)}-${hx.slice(12, 16)}-${hx.slice(16, 20)}-${
    hx.slice(20)
  }`;
}

/** A random version-4 UUID. */
export function randomUuid(): Uint8Array {
  const u = crypto.getRandomValues(new Uint8Array(16));
  u[6] = (u[6] & 0x0f) | 0x40;
  u[8] = (u[8] & 0x3f) | 0x80;
  return u;
}
