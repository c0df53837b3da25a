/**
 * Directory archive -> tar (plain, gzip or zstd): the file table in its order, each file's
 * content read from the disk stream, hard links as tar hard links, PAX headers where ustar
 * cannot hold a field (tar/writer.ts). Or several tars, WebDataset shards: cut at a size
 * (`shardSize`), never splitting a sample (consecutive entries sharing a key: the path up to
 * the first dot of its last component, as WebDataset defines it), or cut where the tars it was
 * converted from ended (`tar.inputs` in the metadata). Each shard extracts on its own: a hard
 * link whose file went to another shard is written as a copy. Within a tar, each directory's
 * contents follow it (`depthFirst`). See docs/TAR.md.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import type { FileEntry } from "../format/filetable.ts";
import type { Archive } from "../read/archive.ts";
import { fileTable } from "../read/files.ts";
import { type AtomicFile, createAtomicFile, writeAll } from "../io/atomic.ts";
import { trackTemporary } from "../io/temporaries.ts";
import { compress, type TarCompression } from "../tar/compression.ts";
import { END_OF_ARCHIVE, entryHeader, padded } from "../tar/writer.ts";
import { BLOCK } from "../tar/header.ts";
import { expectArchive, expectOptions, expectString } from "../args.ts";

/** What `archiveToTar` writes, and how. */
export interface ArchiveToTarOptions {
  /** The tar to write; with shards, a pattern with one `%d` (or `%06d`...) for the number. */
  output: string;
  /** Compression around the tar (default none). */
  compression?: TarCompression;
  /** gzip 1-9 (default 6), zstd 1-19 (default 3). */
  level?: number;
  /** Shards of at most this many bytes (of tar, before compression; a sample bigger than
   * that gets a shard of its own). `output` must be a pattern. */
  shardSize?: number;
  /** Shards where the converted tars ended (recorded in the metadata). `output` must be a
   * pattern. */
  shards?: boolean;
  /** Replace existing outputs. */
  force?: boolean;
  /** Content bytes written so far, of all. */
  onProgress?: (done: number, total: number) => void;
}

/** What `archiveToTar` wrote. */
export interface ArchiveToTarResult {
  /** The files written, in order. */
  outputs: string[];
  /** Entries of the file table, all of them written. */
  entries: number;
  /** Content bytes. */
  bytes: number;
}

/** The WebDataset key of a path: up to the first dot of its last component. */
export function sampleKey(path: string): string {
  const slash = path.lastIndexOf("/");
  const dot = path.indexOf(".", slash + 1);
  return dot < 0 ? path : path.slice(0, dot);
}

/** `pattern` with its one `%d`/`%0Nd` replaced by `n` (`%%` is a percent sign). */
export function shardName(pattern: string, n: number): string {
  return pattern.replace(/%(%|0?\d*d)/g, (_m, spec: string) => {
    if (spec === "%") return "%";
    const width = Number(spec.slice(0, -1) || "0");
    return String(n).padStart(width, spec.startsWith("0") ? "0" : " ");
  });
}

/** Whether `pattern` has exactly one number conversion (`%d`, `%06d`). */
export function isShardPattern(pattern: string): boolean {
  return (pattern.replace(/%%/g, "").match(/%0?\d*d/g) ?? []).length === 1;
}

/** The header blocks of `e` in a tar, as a hard link to `linkTo` or with its own content. */
function headerOf(e: FileEntry, linkTo: string | undefined): Uint8Array {
  const type = e.type === "file" ? (linkTo !== undefined ? "hardlink" : "file") : e.type;
  return entryHeader({
    path: e.path,
    type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    mtimeMs: e.mtimeMs,
    size: type === "file" ? e.size : 0,
    target: linkTo ?? e.target,
    major: e.major,
    minor: e.minor,
    // A hard link's are its file's, given once with the file.
    xattrs: linkTo === undefined ? e.xattrs : undefined,
  });
}

/**
 * Cuts `entries` into shards of at most `limit` bytes of tar (headers, PAX headers, content,
 * padding and the end-of-archive marker), samples whole. A file's content counts once per
 * shard, in the shard where its first name is (its other names there are links).
 */
export function cutBySize(entries: FileEntry[], limit: number): FileEntry[][] {
  const shards: FileEntry[][] = [];
  let cur: FileEntry[] = [], curBytes = 0;
  let ids = new Map<string, string>();
  /** The bytes of entries [i, j) added to a shard whose files are `have`; adds them. */
  const measure = (i: number, j: number, have: Map<string, string>) => {
    let bytes = 0;
    for (const e of entries.slice(i, j)) {
      const id = e.type === "file" ? e.hardLinkTo || e.path : "";
      const linkTo = id ? have.get(id) : undefined;
      if (id && linkTo === undefined) have.set(id, e.path);
      bytes += headerOf(e, linkTo).length + (id && linkTo === undefined ? padded(e.size) : 0);
    }
    return bytes;
  };
  for (let i = 0; i < entries.length;) {
    const key = sampleKey(entries[i].path);
    let j = i;
    while (j < entries.length && sampleKey(entries[j].path) === key) j++;
    const trial = new Map(ids);
    let bytes = measure(i, j, trial);
    if (cur.length && curBytes + bytes + END_OF_ARCHIVE.length > limit) {
      shards.push(cur);
      cur = [];
      curBytes = 0;
      ids = new Map();
      bytes = measure(i, j, ids);
    } else ids = trial;
    cur.push(...entries.slice(i, j));
    curBytes += bytes;
    i = j;
  }
  if (cur.length || !shards.length) shards.push(cur);
  return shards;
}

/** Cuts `entries` where the converted tars ended, as the metadata records. */
async function cutAsRecorded(a: Archive, entries: FileEntry[]): Promise<FileEntry[][]> {
  const meta = await a.metadata() as { tar?: { inputs?: { entries?: unknown }[] } } | null;
  const inputs = meta?.tar?.inputs;
  if (!Array.isArray(inputs)) {
    throw new HexzError(
      "usage",
      `${a.source.name}: no shard boundaries are recorded (it was not converted from tars): ` +
        "give a shard size",
    );
  }
  const counts = inputs.map((i) => i?.entries);
  if (
    !counts.every((n): n is number => Number.isSafeInteger(n) && (n as number) >= 0) ||
    counts.reduce((s, n) => s + n, 0) !== entries.length
  ) {
    throw new HexzError(
      "corrupt",
      `${a.source.name}: the recorded shard boundaries do not match the file table`,
    );
  }
  let at = 0;
  return counts.map((n) => entries.slice(at, at += n));
}

/** The file table of `a`, or an error saying it has none. */
async function treeOf(a: Archive): Promise<FileEntry[]> {
  const entries = await fileTable(a);
  if (!entries) {
    throw new HexzError(
      "unsupported",
      `${a.source.name}: holds no file tree (a disk image): use 'hexz extract' for its stream`,
    );
  }
  return entries;
}

function checkCompression(kind: string): TarCompression {
  if (!["none", "gzip", "zstd"].includes(kind)) {
    throw new HexzError(
      "usage",
      `archiveToTar: compression ${JSON.stringify(kind)} is not none, gzip or zstd`,
    );
  }
  return kind as TarCompression;
}

/**
 * The archive's tree as the bytes of one tar (compressed as asked), made as they are read: for
 * a pipe or a network answer, where `archiveToTar` writes files.
 */
export async function tarStream(
  a: Archive,
  opts: Pick<ArchiveToTarOptions, "compression" | "level" | "onProgress"> = {},
): Promise<AsyncIterable<Uint8Array>> {
  expectArchive(a, "tarStream");
  expectOptions(opts, "tarStream");
  const kind = checkCompression(opts.compression ?? "none");
  const entries = await treeOf(a);
  const total = contentBytes(entries);
  let done = 0;
  return compress(
    shardChunks(a, entries, (n) => {
      done += n;
      opts.onProgress?.(done, total);
    }),
    kind,
    opts.level,
  );
}

const contentBytes = (entries: FileEntry[]) =>
  entries.reduce((s, e) => s + (e.type === "file" && !e.hardLinkTo ? e.size : 0), 0);

/** Writes the archive's tree as a tar, or as shards. */
export async function archiveToTar(
  a: Archive,
  opts: ArchiveToTarOptions,
): Promise<ArchiveToTarResult> {
  expectArchive(a, "archiveToTar");
  expectOptions(opts, "archiveToTar", true);
  expectString(opts.output, "archiveToTar: output");
  const kind = checkCompression(opts.compression ?? "none");
  const sharded = opts.shards || opts.shardSize !== undefined;
  if (sharded && !isShardPattern(opts.output)) {
    throw new HexzError(
      "usage",
      `${opts.output}: shards need an output pattern with one %d (like out-%06d.tar)`,
    );
  }
  if (
    opts.shardSize !== undefined && !(Number.isSafeInteger(opts.shardSize) && opts.shardSize > 0)
  ) {
    throw new HexzError("usage", `shard size must be a positive number of bytes`);
  }
  const entries = await treeOf(a);
  const shards = opts.shardSize !== undefined
    ? cutBySize(entries, opts.shardSize)
    : opts.shards
    ? await cutAsRecorded(a, entries)
    : [entries];
  const names = sharded ? shards.map((_, i) => shardName(opts.output, i)) : [opts.output];
  if (new Set(names).size !== names.length) {
    throw new HexzError("usage", `${opts.output}: the pattern gives two shards the same name`);
  }
  // Refused before anything is written, not after the first shards.
  if (!opts.force) {
    for (const n of names) {
      try {
        Deno.lstatSync(n);
        throw new HexzError("exists", `${n}: already exists (use --force to overwrite)`);
      } catch (e) {
        if (e instanceof HexzError) throw e;
      }
    }
  }
  const total = contentBytes(entries);
  let done = 0;
  const written: AtomicFile[] = [];
  const untrack: (() => void)[] = [];
  let current: AtomicFile | null = null;
  try {
    for (let i = 0; i < shards.length; i++) {
      current = await createAtomicFile(names[i], !!opts.force, [a.source.name]);
      const chunks = compress(
        shardChunks(a, shards[i], (n) => {
          done += n;
          opts.onProgress?.(done, total);
        }),
        kind,
        opts.level,
      );
      for await (const c of chunks) {
        await writeAll(current.file, c, names[i]);
        current.wrote(c.length);
      }
      await current.commit();
      written.push(current);
      current = null;
      // Until the last shard is in place, the finished ones count as temporaries too: an
      // interrupted run (cli/interrupt.ts) leaves no partial set of shards.
      if (sharded) untrack.push(trackTemporary(names[i], "file"));
    }
  } catch (e) {
    await current?.abort();
    // Nor does a failed one.
    for (const w of written) await Deno.remove(w.path).catch(() => {});
    throw e;
  } finally {
    for (const u of untrack) u();
  }
  return { outputs: names, entries: entries.length, bytes: total };
}

/** Content is read from the archive this many bytes at a time. */
const PIECE = 1024 * 1024;

/**
 * `entries` with each directory's contents right after it (depth first; siblings keep their
 * order). GNU tar sets a directory's time once it meets a member outside it, so contents that
 * came later would leave the directory with the time of extraction. Entries whose directory
 * is not among `entries` (it went to an earlier shard) stay at the top level, in order.
 */
export function depthFirst(entries: FileEntry[]): FileEntry[] {
  const dirs = new Set(entries.filter((e) => e.type === "dir").map((e) => e.path));
  const top: FileEntry[] = [];
  const kids = new Map<string, FileEntry[]>();
  for (const e of entries) {
    const slash = e.path.lastIndexOf("/");
    const parent = slash < 0 ? "" : e.path.slice(0, slash);
    if (!parent || !dirs.has(parent)) top.push(e);
    else {
      const list = kids.get(parent) ?? [];
      list.push(e);
      kids.set(parent, list);
    }
  }
  const out: FileEntry[] = [];
  const visit = (list: FileEntry[]) => {
    for (const e of list) {
      out.push(e);
      if (e.type === "dir") visit(kids.get(e.path) ?? []);
    }
  };
  visit(top);
  return out;
}

/** The bytes of one tar holding `entries`. */
async function* shardChunks(
  a: Archive,
  entries: FileEntry[],
  onContent: (n: number) => void,
): AsyncGenerator<Uint8Array> {
  // The first name of a file written here carries its content; its other names link to it
  // (a hard link whose file went to another shard, or comes later, is not left dangling).
  const first = new Map<string, string>();
  for (const e of depthFirst(entries)) {
    const id = e.type === "file" ? e.hardLinkTo || e.path : "";
    const linkTo = id ? first.get(id) : undefined;
    if (id && linkTo === undefined) first.set(id, e.path);
    const size = e.type === "file" && linkTo === undefined ? e.size : 0;
    yield headerOf(e, linkTo);
    for (let off = 0; off < size; off += PIECE) {
      const n = Math.min(PIECE, size - off);
      yield await a.read("disk", e.offset + off, n);
      onContent(n);
    }
    if (size % BLOCK) yield new Uint8Array(BLOCK - (size % BLOCK));
  }
  yield END_OF_ARCHIVE;
}
