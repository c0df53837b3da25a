/**
 * Re-packing an existing archive: its blocks, read through any parent chain, become the
 * input of a new archive with the same block boundaries. `flatten` makes a self-contained copy
 * of a thin archive.
 *
 * @module
 */
import { archivePaths } from "../read/parent.ts";
import { CHUNKING, CODEC, STREAMS } from "../format/constants.ts";
import { decodeFileTable } from "../format/filetable.ts";
import { HexzError, LOCKED } from "../errors.ts";
import type { Archive } from "../read/archive.ts";
import {
  checkPackOptions,
  type PackOptions,
  type PackResult,
  packStreams,
  type StreamInput,
} from "./pack.ts";
import { definedOptions, expectArchive } from "../args.ts";
import type { EncryptOptions } from "../crypto/keys.ts";

/**
 * The codec and level `a` was packed with, as pack options; nothing when `compression` names
 * another codec (whose default level is then the one to use).
 */
export function codecOf(
  a: Archive,
  compression?: PackOptions["compression"],
): Pick<PackOptions, "compression" | "level"> {
  const h = a.header;
  const kept: Pick<PackOptions, "compression" | "level"> = h.codec === CODEC.lz4
    ? { compression: "lz4", level: h.level }
    : h.codec === CODEC.none
    ? { compression: "none" }
    : { compression: "zstd", level: h.level };
  return compression === undefined || compression === kept.compression ? kept : {};
}

/** The chunking options that reproduce `a`'s block boundaries. */
export function chunkingOf(a: Archive): Pick<PackOptions, "cdc" | "blockSize"> {
  const h = a.header;
  return h.chunking === CHUNKING.fastcdc
    ? { cdc: { min: h.cdcMin, avg: h.cdcAvg, max: h.cdcMax } }
    : { blockSize: h.blockSize, cdc: false };
}

/**
 * What a new archive made from `a` keeps of it besides its blocks: the file table of a
 * directory archive (as stored, so its version too) and the metadata, without the figures of
 * `a`'s dictionary training, which describe a dictionary the new archive may not have.
 * What the caller's options give replaces `a`'s.
 */
export async function carriedSections(
  a: Archive,
  opts: Pick<PackOptions, "fileTable" | "metadata">,
): Promise<Pick<PackOptions, "fileTable" | "metadata">> {
  const out: Pick<PackOptions, "fileTable" | "metadata"> = {};
  const table = opts.fileTable ? null : await a.section("fileTable");
  if (table) {
    try {
      decodeFileTable(table, a.size("disk")); // refused here, not half way through the pack
    } catch (e) {
      if (!(e instanceof HexzError)) throw e;
      throw new HexzError(e.code, `${a.source.name}: ${e.message}`, { cause: e });
    }
    out.fileTable = () => table;
  }
  if (opts.metadata !== undefined) return out;
  const meta = await a.metadata();
  if (meta && typeof meta === "object" && !Array.isArray(meta) && "dictionary" in meta) {
    const { dictionary: _, ...rest } = meta as Record<string, unknown>;
    if (Object.keys(rest).length) out.metadata = rest;
  } else if (meta !== null) out.metadata = meta;
  return out;
}

/** Each non-empty stream of `a`, as input for `packStreams`. */
export function archiveStreams(a: Archive): StreamInput[] {
  return STREAMS.map((name, id) => ({ name, id }))
    .filter(({ id }) => a.header.streams[id].blockCount > 0)
    .map(({ name, id }) => ({
      name,
      size: a.header.streams[id].logicalSize,
      blocks: (async function* () {
        for await (const b of a.blocks(id)) yield await a.readBlock(id, b.index);
      })(),
    }));
}

/**
 * The encryption a new archive made from `a` keeps when its caller asks for none: none for
 * an unencrypted `a`; for an encrypted one, `a`'s chain (same password, key derivation and
 * nonce mode), so that its contents are never written out in the clear by default. `a` must
 * have been opened with its password (it could not be read otherwise).
 */
export function keptEncryption(a: Archive): EncryptOptions | undefined {
  if (!a.header.encryption) return undefined;
  if (!a.keys) throw new HexzError("password", `${a.source.name}: ${LOCKED}`);
  return { chain: a.keys.chain, randomNonce: a.keys.nonceMode === "random" };
}

/**
 * Writes a self-contained copy of `a` (no parent references) to `opts.output`, with its
 * file table and metadata (carriedSections) and, unless `opts` says otherwise, its message,
 * codec, level and encryption (an encrypted `a` gives an archive encrypted with the same
 * password; `encrypt` with a password re-encrypts under that one).
 */
export async function flatten(
  a: Archive,
  opts: Omit<PackOptions, "disk" | "memory" | "base" | "cdc" | "blockSize">,
): Promise<PackResult> {
  expectArchive(a, "flatten");
  checkPackOptions(opts, "flatten");
  const given = definedOptions(opts);
  return await packStreams({
    ...codecOf(a, given.compression),
    message: a.header.message,
    encrypt: given.encrypt ?? keptEncryption(a),
    ...given,
    output: opts.output,
    ...await carriedSections(a, opts),
    readsFrom: [...(opts.readsFrom ?? []), ...await archivePaths(a)],
    ...chunkingOf(a),
  }, archiveStreams(a));
}
