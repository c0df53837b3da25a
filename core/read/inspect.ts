/**
 * `inspect`: what an archive holds, from its header alone (no block is read).
 *
 * @module
 */
import { CHUNKING, CODEC_NAMES, FEATURE, STREAMS } from "../format/constants.ts";
import { formatUuid } from "../format/header.ts";
import { toHex } from "../hash/blake3.ts";
import type { Archive } from "./archive.ts";
import { describeEncryption, type EncryptionReport } from "../crypto/keys.ts";
import { expectArchive } from "../args.ts";

export interface StreamReport {
  name: string;
  logicalSize: number;
  storedBytes: number;
  blocks: number;
  dataBlocks: number;
  zeroBlocks: number;
  dedupBlocks: number;
  parentBlocks: number;
  /** Logical bytes that live in the parent chain. */
  parentBytes: number;
  pages: number;
  /** Bytes of the file the stream's index pages take, as stored. */
  indexBytes: number;
  /** logicalSize / storedBytes; null when nothing is stored (an empty stream, or only zero
   * blocks and blocks in the parent chain). */
  ratio: number | null;
}

export interface InspectReport {
  path: string;
  fileSize: number;
  formatVersion: string;
  uuid: string;
  rootHash: string;
  createdAt: string;
  toolVersion: string;
  message: string;
  features: string[];
  compression: { codec: string; level: number };
  chunking:
    | { mode: "fixed"; blockSize: number }
    | { mode: "fastcdc"; min: number; avg: number; max: number };
  streams: StreamReport[];
  dictionaryBytes: number;
  metadataBytes: number;
  parent: { uuid: string; rootHash: string; path: string } | null;
  /** Logical bytes of all streams over the archive file size; null for an empty archive. */
  compressionRatio: number | null;
  /** Non-zero blocks over unique stored blocks (1 = no duplicates found); null when no block
   * is stored (an empty archive, or one of zero blocks and blocks in the parent chain). */
  dedupRatio: number | null;
  signed: boolean;
  /** Encrypted archives: cipher, key derivation, nonce mode, whether the password was given. */
  encryption: EncryptionReport | null;
}

export function inspectArchive(a: Archive): InspectReport {
  expectArchive(a, "inspect");
  const h = a.header;
  const features = Object.entries(FEATURE).filter(([, bit]) => h.features & bit).map(([n]) => n);
  const streams = h.streams.map((s, i): StreamReport => ({
    name: STREAMS[i],
    logicalSize: s.logicalSize,
    storedBytes: s.storedBytes,
    blocks: s.blockCount,
    dataBlocks: s.blockCount - s.zeroBlocks - s.dedupBlocks - s.parentBlocks,
    zeroBlocks: s.zeroBlocks,
    dedupBlocks: s.dedupBlocks,
    parentBlocks: s.parentBlocks,
    parentBytes: s.parentBytes,
    pages: s.pageCount,
    indexBytes: a.pages.slice(s.firstPage, s.firstPage + s.pageCount)
      .reduce((n, p) => n + p.length, 0),
    ratio: s.storedBytes ? s.logicalSize / s.storedBytes : null,
  }));
  const logical = streams.reduce((n, s) => n + s.logicalSize, 0);
  const nonZero = streams.reduce((n, s) => n + s.blocks - s.zeroBlocks - s.parentBlocks, 0);
  const unique = streams.reduce((n, s) => n + s.dataBlocks, 0);
  return {
    path: a.source.name,
    fileSize: a.source.size,
    formatVersion: `${h.versionMajor}.${h.versionMinor}`,
    uuid: formatUuid(h.uuid),
    rootHash: toHex(h.rootHash),
    createdAt: new Date(h.createdAtMs).toISOString(),
    toolVersion: h.toolVersion,
    message: h.message,
    features,
    compression: { codec: CODEC_NAMES[h.codec] ?? `codec ${h.codec}`, level: h.level },
    chunking: h.chunking === CHUNKING.fastcdc
      ? { mode: "fastcdc", min: h.cdcMin, avg: h.cdcAvg, max: h.cdcMax }
      : { mode: "fixed", blockSize: h.blockSize },
    streams,
    dictionaryBytes: h.dictionary.length,
    metadataBytes: h.metadata.length,
    parent: h.parent
      ? { uuid: formatUuid(h.parent.uuid), rootHash: toHex(h.parent.rootHash), path: h.parent.path }
      : null,
    compressionRatio: logical ? logical / a.source.size : null,
    dedupRatio: unique ? nonZero / unique : null,
    signed: a.source.size > h.archiveEnd,
    encryption: h.encryption ? describeEncryption(h.encryption, !!a.keys) : null,
  };
}
