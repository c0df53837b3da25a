/**
 * `pack`: turns a disk image and/or a memory dump into an archive. Data flows one way:
 * input -> chunker -> zero check -> BLAKE3 -> dedup (this archive, then the base chain)
 * -> compressor -> writer. Memory is bounded by the dedup table (one entry per unique block),
 * not by the input size.
 *
 * @module
 */
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { HexzError, osReason } from "../errors.ts";
import { type CdcParams, DEFAULT_CDC, validateCdcParams } from "../chunk/fastcdc.ts";
import { type ChunkSpec, splitBlocks } from "../chunk/split.ts";
import { checkLevel, createCompressor, DEFAULT_LEVEL, type DictCodec } from "../codec/codec.ts";
import {
  CHUNKING,
  CODEC,
  type CodecName,
  FEATURE,
  KIND,
  MAX_ANCESTOR,
  MAX_BLOCK_SIZE,
  MAX_DICTIONARY,
  MIN_BLOCK_SIZE,
  type StreamName,
  STREAMS,
} from "../format/constants.ts";
import type { BlockEntry } from "../format/entry.ts";
import { type Header, randomUuid } from "../format/header.ts";
import { blake3 } from "../hash/blake3.ts";
import { bytesKey, exactSize } from "../format/bytes.ts";
import type { Archive } from "../read/archive.ts";
import { type EncryptOptions, keysForPack } from "../crypto/keys.ts";
import { createWriter } from "./writer.ts";
import { sampleFile, trainDictionary } from "./dict_train.ts";
import { createZstdDictCodec } from "../codec/zstd_dict.ts";
import {
  fixedLengths,
  parallelFilePipeline,
  parallelFilesPipeline,
  parallelPipeline,
  type PipelineFile,
  serialPipeline,
} from "./pipeline.ts";
import { type PackPool, packPool } from "./pool.ts";
import { archivePaths } from "../read/parent.ts";
import { VERSION } from "../version.ts";
import { fileInput, type FindDataRanges } from "./input.ts";
import { expectArchive, expectOptions, expectString } from "../args.ts";

export const DEFAULT_BLOCK_SIZE = 64 * 1024;

/** Inputs from this size on are written around the page cache when workers pack them. */
const DIRECT_MIN_BYTES = 64 * 1024 * 1024;

export interface PackProgress {
  stream: string;
  /** Input bytes consumed so far, over all streams. */
  done: number;
  /** Total input bytes over all streams. */
  total: number;
}

export interface PackOptions {
  output: string;
  /** Path of the disk image (main stream). */
  disk?: string;
  /** Path of the memory dump (auxiliary stream). */
  memory?: string;
  compression?: CodecName;
  level?: number;
  /** Fixed block size (default 64 KiB); ignored with `cdc`. */
  blockSize?: number;
  /** Content-defined chunking: true for the defaults (16/64/128 KiB) or explicit parameters. */
  cdc?: boolean | CdcParams;
  /** Replace an existing output. */
  force?: boolean;
  message?: string;
  metadata?: unknown;
  /** Thin archive: blocks found in this archive (or its chain) are stored as references. */
  base?: Archive;
  /** Where the base is, recorded in the child to find it again (default: as opened). A
   * relative path is recorded relative to the child's directory (parentPathFor). */
  basePath?: string;
  /** A raw-content zstd dictionary stored in the archive and used for every block. */
  dictionary?: { bytes: Uint8Array; codec: DictCodec };
  /**
   * Train a zstd dictionary on samples of the first input (needs zstd compression): true, or
   * the size limit (default 110 KiB). The training figures go into the metadata under
   * `dictionary`. Nothing is stored when the dictionary would not help.
   */
  trainDictionary?: boolean | { maxSize?: number };
  onProgress?: (p: PackProgress) => void;
  /** Hash and compress in this many Web Workers (default: the number of cores; 1 = on this
   * thread). The archive is byte-identical whatever the count. */
  workers?: number;
  /**
   * Workers already started for this pack (`startPackPool` with its compression and level),
   * so they start while the caller still prepares; their count replaces `workers`. The pack
   * closes them when it ends, whatever happens, also when it runs on this thread instead
   * (dictionary packs).
   */
  pool?: PackPool;
  /** Encrypt the archive (docs/SECURITY.md). A thin archive on an encrypted base is always
   * encrypted with the base's password, which `base` must have been opened with. */
  encrypt?: EncryptOptions;
  /** Directory archives: the encoded file table, asked for once every stream is consumed. */
  fileTable?: () => Uint8Array;
  /** Instead of `metadata`: metadata known only once every stream is consumed (a converted
   * tar's shard boundaries), asked for then. */
  lateMetadata?: () => unknown;
  /**
   * Finds the data ranges of a sparse input file, whose holes are then taken as zeros without
   * reading them (mod.ts passes SEEK_DATA/SEEK_HOLE where FFI is allowed). The archive is the
   * same with or without it.
   */
  findDataRanges?: FindDataRanges;
  /** Files the pack reads besides its inputs and its base's chain (an overlay): the output
   * may not be one of them. */
  readsFrom?: readonly string[];
  /** Fixed identity, for reproducible archives (tests, golden vectors). */
  uuid?: Uint8Array;
  createdAtMs?: number;
  /** Overrides the "hexz <version>" string in the header (reproducible golden vectors). */
  toolVersion?: string;
}

export interface PackResult {
  path: string;
  header: Header;
  inputBytes: number;
  outputBytes: number;
}

interface Stored {
  location: number;
  storedLength: number;
  codec: number;
  flags: number;
}

/**
 * The chunking `opts` ask for, validated. A thin archive is chunked like its base (block
 * boundaries must line up with the base's for dedup to find anything): chunking options that
 * ask for anything else are refused rather than ignored.
 */
export function chunkSpec(opts: PackOptions): ChunkSpec {
  if (opts.base) {
    const b = opts.base.header;
    const base: ChunkSpec = b.chunking === CHUNKING.fastcdc
      ? { kind: "cdc", params: { min: b.cdcMin, avg: b.cdcAvg, max: b.cdcMax } }
      : { kind: "fixed", size: b.blockSize };
    if (opts.cdc || opts.blockSize !== undefined) {
      const asked = chunkSpec({ ...opts, base: undefined });
      if (describeChunking(asked) !== describeChunking(base)) {
        throw new HexzError(
          "usage",
          `a thin archive is chunked like its base (${describeChunking(base)}), not ${
            describeChunking(asked)
          }: leave out the chunking options`,
        );
      }
    }
    return base;
  }
  if (opts.cdc) {
    const params = opts.cdc === true ? DEFAULT_CDC : opts.cdc;
    validateCdcParams(params);
    return { kind: "cdc", params };
  }
  const size = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
  // The format takes any size in range; the command line asks for a power of two.
  if (!Number.isInteger(size) || size < MIN_BLOCK_SIZE || size > MAX_BLOCK_SIZE) {
    throw new HexzError(
      "usage",
      `block size must be between 1 KiB and 16 MiB, got ${
        Number.isInteger(size) && size > 0 ? exactSize(size) : size
      }`,
    );
  }
  return { kind: "fixed", size };
}

/**
 * The parent path recorded in a thin archive at `output` for a base named `base` (as given,
 * relative to the working directory): relative paths are rewritten relative to the child's
 * directory, as qemu-img resolves a relative backing file against its image, so the child
 * finds its parent from any working directory and the pair can move together. Absolute
 * paths and URLs are kept as they are.
 */
export function parentPathFor(base: string, output: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(base) || isAbsolute(base)) return base;
  return relative(dirname(resolve(output)), resolve(base)) || base;
}

/** "fixed 64 KiB blocks", "FastCDC min 16 KiB, avg 64 KiB, max 128 KiB", as inspect says. */
function describeChunking(c: ChunkSpec): string {
  const k = (n: number) => n % 1024 ? `${n} B` : `${n / 1024} KiB`;
  return c.kind === "fixed"
    ? `fixed ${k(c.size)} blocks`
    : `FastCDC min ${k(c.params.min)}, avg ${k(c.params.avg)}, max ${k(c.params.max)}`;
}

/**
 * Opens an input: a regular file, or a block device (its size found by seeking to its end).
 * Anything else has no size to index by (a character device, a FIFO, /proc files report 0) and
 * is refused before it is opened (opening a FIFO would wait for a writer).
 */
async function openInput(path: string): Promise<[Deno.FsFile, number]> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new HexzError("not-found", `${path}: no such file`);
    }
    throw new HexzError("io", `${path}: ${osReason(e)}`);
  }
  if (st.isDirectory) {
    throw new HexzError("usage", `${path}: is a directory (use 'hexz build' for directories)`);
  }
  if (!st.isFile && !st.isBlockDevice) {
    throw new HexzError(
      "usage",
      `${path}: not a regular file or a block device (a stream has no size to index by)`,
    );
  }
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { read: true });
  } catch (e) {
    if (st.isBlockDevice && e instanceof Deno.errors.PermissionDenied) {
      throw new HexzError("io", `${path}: Deno opens devices only with --allow-all`);
    }
    throw new HexzError("io", `${path}: ${osReason(e)}`);
  }
  try {
    if (st.isFile) {
      const size = (await f.stat()).size;
      // /proc and /sys files say 0 bytes and then have data: nothing to index by either.
      if (size === 0 && (await f.read(new Uint8Array(1))) !== null) {
        throw new HexzError(
          "usage",
          `${path}: reports 0 bytes but has data (a /proc or /sys file?): copy it to a file first`,
        );
      }
      await f.seek(0, Deno.SeekMode.Start);
      return [f, size];
    }
    const size = await f.seek(0, Deno.SeekMode.End);
    await f.seek(0, Deno.SeekMode.Start);
    return [f, size];
  } catch (e) {
    f.close();
    if (e instanceof HexzError) throw e;
    throw new HexzError("io", `${path}: ${osReason(e)}`);
  }
}

/**
 * `opts` with a dictionary trained on `samples()`, unchanged if it would not help: if it does
 * not make held-out samples smaller, or (given the `inputBytes` to pack) if what it saves on
 * them, scaled to the input, is less than the dictionary itself costs in the archive.
 */
export async function withTrainedDictionary(
  opts: PackOptions,
  samples: () => Promise<Uint8Array[]>,
  inputBytes?: number,
): Promise<PackOptions> {
  if ((opts.compression ?? "lz4") !== "zstd") {
    throw new HexzError("usage", "--train-dict needs --compression zstd");
  }
  const level = opts.level ?? DEFAULT_LEVEL.zstd;
  checkLevel("zstd", level);
  const maxSize = typeof opts.trainDictionary === "object"
    ? opts.trainDictionary.maxSize
    : undefined;
  if (
    maxSize !== undefined &&
    !(Number.isInteger(maxSize) && maxSize >= 256 && maxSize <= MAX_DICTIONARY)
  ) {
    throw new HexzError("usage", `dictionary size must be 256 B..16 MiB, got ${maxSize}`);
  }
  const r = await trainDictionary(await samples(), {
    maxSize,
    level,
  });
  if (!r) return opts;
  if (inputBytes !== undefined && r.evalBytes > 0) {
    const saves = (r.evalPlain - r.evalDict) / r.evalBytes * inputBytes;
    if (saves <= r.dictionary.length) return opts;
  }
  const info = {
    bytes: r.dictionary.length,
    samples: r.used,
    skippedZero: r.skippedZero,
    skippedEntropy: r.skippedEntropy,
    k: r.k,
    d: r.d,
    evalBytes: r.evalBytes,
    evalZstd: r.evalPlain,
    evalZstdDict: r.evalDict,
  };
  const meta = opts.metadata && typeof opts.metadata === "object" && !Array.isArray(opts.metadata)
    ? { ...opts.metadata, dictionary: info }
    : opts.metadata === undefined
    ? { dictionary: info }
    : opts.metadata;
  return {
    ...opts,
    metadata: meta,
    dictionary: { bytes: r.dictionary, codec: await createZstdDictCodec(r.dictionary, level) },
  };
}

/** The lengths of the blocks of `blocks`, in order. */
async function* lengthsOf(blocks: AsyncIterable<Uint8Array>): AsyncGenerator<number> {
  for await (const b of blocks) yield b.length;
}

/** One stream to pack, already cut into blocks. */
export interface StreamInput {
  name: StreamName;
  /** Total bytes the blocks will add up to (for progress; 0 if unknown). */
  size: number;
  /** The stream's blocks in order. Each view only needs to stay valid until the next one. */
  blocks: AsyncIterable<Uint8Array>;
  /** The regular file `blocks` cuts (from offset 0, `size` bytes): the parallel pipeline lets
   * its workers read the blocks from it directly (with CDC, `blocks` still finds the cuts). */
  file?: string;
  /** For `file`: whether a range (asked in increasing order) lies wholly in a hole. */
  inHole?: (offset: number, length: number) => boolean;
  /** Instead of `file`: the regular files whose blocks, one file after another, are
   * `blocks` (a directory tree); the parallel pipeline's workers read them directly. */
  files?: () => Iterable<PipelineFile> | AsyncIterable<PipelineFile>;
  /** The blocks decide the stream's length (a tar read as it streams): `size` is not known
   * beforehand, so it is not checked. */
  streamed?: boolean;
}

/** The metadata as the JSON the archive stores it in. */
function metadataBytes(m: unknown): Uint8Array {
  let json: string | undefined;
  try {
    json = JSON.stringify(m);
  } catch (e) {
    throw new HexzError("usage", `metadata cannot be stored as JSON: ${(e as Error).message}`);
  }
  if (json === undefined) throw new HexzError("usage", "metadata cannot be stored as JSON");
  return new TextEncoder().encode(json);
}

/**
 * Throws a usage error unless `opts` is an options object whose paths are strings and whose
 * `base` is an Archive: what the library's callers may get wrong in type, not in value.
 */
export function checkPackOptions(opts: Partial<PackOptions>, what: string): void {
  expectOptions(opts, what, true);
  expectString(opts.output, `${what}: output`);
  for (const k of ["disk", "memory", "basePath", "message"] as const) {
    if (opts[k] !== undefined) expectString(opts[k], `${what}: ${k}`, "a string");
  }
  if (opts.base !== undefined) expectArchive(opts.base, `${what}: base`);
}

/** Packs the given files into a new archive at `opts.output`. */
export async function pack(opts: PackOptions): Promise<PackResult> {
  checkPackOptions(opts, "pack");
  try {
    return await packFiles(opts);
  } finally {
    opts.pool?.close();
  }
}

async function packFiles(opts: PackOptions): Promise<PackResult> {
  const inputs = ([["disk", opts.disk], ["memory", opts.memory]] as const)
    .filter(([, p]) => p !== undefined) as [StreamName, string][];
  if (!inputs.length) throw new HexzError("usage", "nothing to pack: give --disk and/or --memory");
  const spec = chunkSpec(opts);
  const files: Deno.FsFile[] = [];
  try {
    const streams: StreamInput[] = [];
    for (const [name, path] of inputs) {
      const [file, size] = await openInput(path);
      files.push(file);
      const { input, inHole } = fileInput(file, path, size, opts.findDataRanges);
      streams.push({ name, size, blocks: splitBlocks(input, spec), file: path, inHole });
    }
    if (opts.trainDictionary) {
      const sampleSize = spec.kind === "fixed" ? spec.size : spec.params.avg;
      const trained = await withTrainedDictionary(
        opts,
        () => sampleFile(inputs[0][1], sampleSize, 4000, 16 << 20),
        streams.reduce((n, s) => n + s.size, 0),
      );
      try {
        return await packStreams(trained, streams);
      } finally {
        if (trained.dictionary !== opts.dictionary) trained.dictionary?.codec.close?.();
      }
    }
    return await packStreams(opts, streams);
  } finally {
    for (const f of files) f.close();
  }
}

/**
 * Packs streams that are already cut into blocks (by `chunkSpec(opts)`, which the header
 * records). `pack`, `commit` and flattening all end here.
 */
export async function packStreams(opts: PackOptions, inputs: StreamInput[]): Promise<PackResult> {
  let pool: PackPool | null = null;
  try {
    pool = packPool(opts);
    return await packWith(opts, inputs, pool);
  } finally {
    pool?.close();
    opts.pool?.close();
  }
}

async function packWith(
  opts: PackOptions,
  inputs: StreamInput[],
  pool: PackPool | null,
): Promise<PackResult> {
  const codecName: CodecName = opts.compression ?? "lz4";
  const level = opts.level ?? DEFAULT_LEVEL[codecName];
  checkLevel(codecName, level);
  // Checked before anything is packed, not after.
  const metadata = opts.metadata === undefined ? null : metadataBytes(opts.metadata);
  if (opts.uuid !== undefined && opts.uuid.length !== 16) {
    throw new HexzError("usage", `uuid must be 16 bytes, got ${opts.uuid.length}`);
  }
  if (
    opts.createdAtMs !== undefined &&
    !(Number.isSafeInteger(opts.createdAtMs) && opts.createdAtMs >= 0)
  ) {
    throw new HexzError(
      "usage",
      `createdAtMs must be a time in ms since 1970, got ${opts.createdAtMs}`,
    );
  }
  if (opts.dictionary && codecName !== "zstd") {
    throw new HexzError("usage", "a dictionary needs --compression zstd");
  }
  const spec = chunkSpec(opts);
  const compressor = createCompressor(codecName, level, opts.dictionary?.codec);
  const total = inputs.reduce((a, s) => a + s.size, 0);
  const baseIndex = opts.base ? await indexBase(opts.base) : null;
  const keys = await keysForPack(opts.encrypt, opts.base);
  // With workers compressing, this thread has time to wait for the device, and saves the
  // copy into the page cache that would take CPU from them.
  const direct = !!pool && total >= DIRECT_MIN_BYTES;
  const reads = [
    ...(opts.readsFrom ?? []),
    ...inputs.flatMap((s) => s.file ? [s.file] : []),
    ...(opts.base ? await archivePaths(opts.base) : []),
  ];
  const w = await createWriter(opts.output, { force: opts.force, keys, direct, inputs: reads });
  try {
    const h = w.header;
    h.uuid = opts.uuid ?? randomUuid();
    h.createdAtMs = opts.createdAtMs ?? Date.now();
    h.codec = compressor.id;
    h.level = codecName === "none" ? 0 : level;
    h.toolVersion = opts.toolVersion ?? `hexz ${VERSION}`;
    h.message = opts.message ?? "";
    if (spec.kind === "fixed") {
      h.chunking = CHUNKING.fixed;
      h.blockSize = spec.size;
    } else {
      h.chunking = CHUNKING.fastcdc;
      h.cdcMin = spec.params.min;
      h.cdcAvg = spec.params.avg;
      h.cdcMax = spec.params.max;
    }
    if (opts.base) {
      h.features |= FEATURE.thin;
      h.parent = {
        uuid: opts.base.header.uuid,
        rootHash: opts.base.header.rootHash,
        path: parentPathFor(opts.basePath ?? opts.base.source.name, opts.output),
      };
    }
    if (opts.dictionary) await w.addSection("dictionary", opts.dictionary.bytes);

    const seen = new Map<string, Stored>();
    const isNew = (plain: Uint8Array) => {
      const hash = w.identify(plain);
      return !seen.has(bytesKey(hash)) && !baseIndex?.has(bytesKey(hash));
    };
    let inputBytes = 0;
    let lastReport = 0;
    for (const { name, blocks, file, files, size, inHole, streamed } of inputs) {
      const id = STREAMS.indexOf(name);
      const processed = !pool
        ? serialPipeline(blocks, compressor, isNew, inHole)
        : files
        ? parallelFilesPipeline(files(), pool)
        : file
        ? parallelFilePipeline(
          file,
          spec.kind === "fixed" ? fixedLengths(size, spec.size) : lengthsOf(blocks),
          pool,
          inHole,
        )
        : parallelPipeline(blocks, pool);
      const streamStart = inputBytes;
      for await (const p of processed) {
        inputBytes += p.length;
        const entry: BlockEntry = {
          location: 0,
          storedLength: 0,
          logicalLength: p.length,
          kind: KIND.zero,
          codec: CODEC.none,
          flags: 0,
          parentStream: 0,
          ancestor: 0,
          hash: w.identify(p.zero ? zeroHash(p.length) : p.hash!),
        };
        if (!p.zero) {
          const key = bytesKey(entry.hash);
          const prior = seen.get(key);
          const inBase = prior ? undefined : baseIndex?.get(key);
          if (prior) {
            entry.kind = KIND.dedup;
            Object.assign(entry, prior);
          } else if (inBase) {
            entry.kind = KIND.parent;
            entry.location = inBase.index;
            entry.parentStream = inBase.stream;
            entry.ancestor = inBase.ancestor;
          } else {
            entry.kind = KIND.data;
            entry.codec = p.codec;
            if (!p.payload) {
              // Workers leave out payloads of repeats they already sent; the first copy is
              // always written before its repeats, so this cannot happen with a sound pipeline.
              throw new Error(`pack: block without payload at ${inputBytes - p.length}`);
            }
            Object.assign(entry, await w.appendBlock(p.payload));
            seen.set(key, {
              location: entry.location,
              storedLength: entry.storedLength,
              codec: p.codec,
              flags: entry.flags,
            });
          }
        }
        await w.addEntry(id, entry);
        if (opts.onProgress && inputBytes - lastReport >= 4 * 1024 * 1024) {
          lastReport = inputBytes;
          opts.onProgress({ stream: name, done: inputBytes, total });
        }
      }
      // An input that shrank while it was read ends early: an archive of neither version.
      if (!streamed && inputBytes - streamStart !== size) {
        throw new HexzError(
          "io",
          `${file ?? name}: changed while being packed (${size} -> ${
            inputBytes - streamStart
          } bytes)`,
        );
      }
    }
    if (opts.fileTable) await w.addSection("fileTable", opts.fileTable());
    const finalMetadata = opts.lateMetadata ? metadataBytes(opts.lateMetadata()) : metadata;
    if (finalMetadata) await w.addSection("metadata", finalMetadata);
    opts.onProgress?.({
      stream: inputs[inputs.length - 1]?.name ?? "disk",
      done: inputBytes,
      total,
    });
    const header = await w.finish();
    return { path: opts.output, header, inputBytes, outputBytes: header.archiveEnd };
  } catch (e) {
    await w.abort();
    throw e;
  }
}

const zeroHashes = new Map<number, Uint8Array>();
/** BLAKE3 of `n` zero bytes, memoised (zero blocks come in few sizes). */
function zeroHash(n: number): Uint8Array {
  let h = zeroHashes.get(n);
  if (!h) {
    h = blake3(new Uint8Array(n));
    if (zeroHashes.size < 64) zeroHashes.set(n, h);
  }
  return h;
}

/** Where a block of the chain above a thin archive is: ancestor 0 is the base itself. */
interface InChain {
  ancestor: number;
  stream: number;
  index: number;
}

/**
 * Hash -> where in the chain: every non-zero block of the base (ancestor 0, parent entries
 * included: they name blocks of the base's own streams), then the blocks stored in its
 * ancestors (data and dedup entries) that the base does not have, nearest first, so content
 * that a thin chain dropped and brought back is not stored again. The whole chain must open
 * (a child of a base whose ancestors are gone could not be read either).
 */
async function indexBase(base: Archive): Promise<Map<string, InChain>> {
  const index = new Map<string, InChain>();
  let a: Archive | null = base;
  for (let ancestor = 0; a && ancestor <= MAX_ANCESTOR; ancestor++) {
    for (let s = 0; s < STREAMS.length; s++) {
      for await (const b of a.blocks(s)) {
        const kind = b.entry.kind;
        if (kind === KIND.zero || (ancestor > 0 && kind === KIND.parent)) continue;
        const key = bytesKey(b.entry.hash);
        if (!index.has(key)) index.set(key, { ancestor, stream: s, index: b.index });
      }
    }
    a = await a.parent();
  }
  return index;
}
