/**
 * Constants of the `.hxz` format, version 1. docs/FORMAT.md is the normative description;
 * every number here is named there.
 *
 * @module
 */

/** "HEXZ" at offset 0. */
export const MAGIC = new Uint8Array([0x48, 0x45, 0x58, 0x5a]);
export const FORMAT_MAJOR = 1;
export const FORMAT_MINOR = 0;
/** The header occupies bytes [0, 4096) of every archive. */
export const HEADER_SIZE = 4096;
/** The header checksum (and root hash) is BLAKE3-256 of header bytes [0, 4064). */
export const HEADER_CHECKSUM_OFFSET = 4064;

/** Streams an archive holds; the number is the stream id stored on disk. */
export const STREAMS = ["disk", "memory"] as const;
export type StreamName = typeof STREAMS[number];
export function streamId(name: StreamName): number {
  return STREAMS.indexOf(name);
}

/** Required feature bits: a reader that does not know a set bit must refuse the archive. */
export const FEATURE = {
  encrypted: 1 << 0,
  thin: 1 << 1,
  dictionary: 1 << 2,
  fileTable: 1 << 3,
  compressedIndex: 1 << 4,
  ancestors: 1 << 5,
  /** `parent` entries may leave their hash out (entry flag bit 1) and inherit the referenced
   * block's; only with `thin`. */
  inheritedHashes: 1 << 6,
} as const;
export const KNOWN_FEATURES = FEATURE.encrypted | FEATURE.thin | FEATURE.dictionary |
  FEATURE.fileTable | FEATURE.compressedIndex | FEATURE.ancestors | FEATURE.inheritedHashes;

/** The furthest ancestor a `parent` entry can name (entry byte 20: 0 the parent itself). */
export const MAX_ANCESTOR = 255;

/** How an index page's entries are stored (master record byte 1, with feature bit 4). */
export const PAGE_CODEC = { none: 0, lz4: 1 } as const;

/** Codec ids stored in block entries and the header. */
export const CODEC = { none: 0, lz4: 1, zstd: 2, zstdDict: 3 } as const;
export type CodecName = "none" | "lz4" | "zstd";
export const CODEC_NAMES: Record<number, string> = {
  0: "none",
  1: "lz4",
  2: "zstd",
  3: "zstd+dict",
};

/** Block entry kinds. */
export const KIND = { data: 0, zero: 1, dedup: 2, parent: 3 } as const;

/** Chunking modes recorded in the header. */
export const CHUNKING = { fixed: 0, fastcdc: 1 } as const;

/** Size of one block entry in an index page. */
export const ENTRY_SIZE = 56;
/** At most this many entries per index page. */
export const PAGE_MAX_ENTRIES = 4096;
export const PAGE_HEADER_SIZE = 32;
export const PAGE_MAGIC = new Uint8Array([0x48, 0x58, 0x50, 0x47]); // "HXPG"
export const MASTER_MAGIC = new Uint8Array([0x48, 0x58, 0x4d, 0x49]); // "HXMI"
export const MASTER_HEADER_SIZE = 16;
export const MASTER_RECORD_SIZE = 72;
export const HASH_SIZE = 32;

/** Block sizes allowed when packing (fixed mode). */
export const MIN_BLOCK_SIZE = 1024;
export const MAX_BLOCK_SIZE = 16 * 1024 * 1024;
/** No block of any archive may be larger than this (CDC max included): bounds allocations. */
export const MAX_LOGICAL_BLOCK = 64 * 1024 * 1024;
/** Stored blocks may grow a little past their logical size (codec framing, GCM tags). */
export const MAX_STORED_BLOCK = MAX_LOGICAL_BLOCK + 65536;
/** Sections (dictionary, metadata, file table) are bounded so a hostile header cannot make us
 * allocate without limit. */
export const MAX_DICTIONARY = 16 * 1024 * 1024;
export const MAX_METADATA = 64 * 1024 * 1024;
export const MAX_FILE_TABLE = 1024 * 1024 * 1024;
export const MAX_MESSAGE = 1024;
export const MAX_PARENT_PATH = 510;
