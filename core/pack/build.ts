/**
 * `build`: packs a directory tree into a directory archive. Every regular file is chunked on
 * its own (files are natural boundaries, so unchanged files dedup against earlier versions);
 * contents go to the disk stream one after another, and the file table records each file's
 * place, type, mode, times and owner, and each symlink's target. A file met again under
 * another path of the tree (the same device and inode) is packed once: the later paths are
 * recorded as hard links to the first. Device nodes and FIFOs are entries with their device
 * numbers; every entry keeps its extended attributes (read with `readXattrs`, never through a
 * symlink). Sockets are skipped with a warning, as tar does.
 *
 * @module
 */
import { HexzError, osReason } from "../errors.ts";
import { createSplitter, splitBlocks } from "../chunk/split.ts";
import { checkRanges, fileInput, holeTest } from "./input.ts";
import { fixedLengths, type PipelineFile } from "./pipeline.ts";
import { sampleFiles } from "./dict_train.ts";
import { encodeFileTable, type FileEntry, type Xattr } from "../format/filetable.ts";
import { expectString } from "../args.ts";
import {
  checkPackOptions,
  chunkSpec,
  type PackOptions,
  type PackResult,
  packStreams,
  type StreamInput,
  withTrainedDictionary,
} from "./pack.ts";
import { splitDev } from "../format/devnum.ts";

export interface BuildOptions extends Omit<PackOptions, "disk" | "memory"> {
  /** The directory to pack. */
  source: string;
  /** A memory dump to store beside the tree (auxiliary stream). */
  memory?: string;
  /** Called for entries that are skipped (sockets), and once if xattrs cannot be read. */
  onWarning?: (message: string) => void;
  /**
   * The extended attributes of a path itself (never its symlink's target); null where they
   * cannot be read here (mod.ts gives ffi/special_files.ts's, which needs --allow-ffi). Without
   * it, or when it returns null, the tree is packed without xattrs and `onWarning` says so
   * once.
   */
  readXattrs?: (path: string) => Xattr[] | null;
  /** Leave extended attributes out (mksquashfs's -no-xattrs): no warning, none read. */
  noXattrs?: boolean;
}

export interface BuildResult extends PackResult {
  entries: number;
}

interface Walked {
  entry: FileEntry;
  abs: string;
}

/**
 * Lists the tree in path order. Synchronous calls on purpose: each of Deno's asynchronous file
 * system calls costs a trip through its thread pool (about 60 us here, against 5 us), which for
 * a tree of 5,000 files was more than half of the build. `seen` maps the device and inode of
 * each file with more than one link to the first path it was listed under.
 */
function walk(
  root: string,
  rel: string,
  out: Walked[],
  warn: (m: string) => void,
  seen: Map<string, string>,
) {
  const dir = rel ? `${root}/${rel}` : root;
  const names: string[] = [];
  try {
    for (const e of Deno.readDirSync(dir)) names.push(e.name);
  } catch (e) {
    throw new HexzError("io", `${dir}: ${osReason(e)}`);
  }
  names.sort();
  for (const name of names) {
    const path = rel ? `${rel}/${name}` : name;
    const abs = `${root}/${path}`;
    let st: Deno.FileInfo;
    try {
      st = Deno.lstatSync(abs);
    } catch (e) {
      if (name.includes("\uFFFD")) {
        throw new HexzError(
          "unsupported",
          `${abs}: the name is not valid UTF-8 (archives keep UTF-8 names)`,
        );
      }
      throw new HexzError("io", `${abs}: ${osReason(e)}`);
    }
    const base = {
      path,
      mode: (st.mode ?? 0o644) & 0o7777,
      mtimeMs: st.mtime?.getTime() ?? 0,
      uid: st.uid ?? 0,
      gid: st.gid ?? 0,
      size: 0,
      offset: 0,
      target: "",
    };
    if (st.isSymlink) {
      out.push({ entry: { ...base, type: "symlink", target: Deno.readLinkSync(abs) }, abs });
    } else if (st.isDirectory) {
      out.push({ entry: { ...base, type: "dir" }, abs });
      walk(root, path, out, warn, seen);
    } else if (st.isFile) {
      const id = st.nlink !== null && st.nlink > 1 && st.ino !== null ? `${st.dev}:${st.ino}` : "";
      const first = id ? seen.get(id) : undefined;
      if (first !== undefined) {
        out.push({ entry: { ...base, type: "file", hardLinkTo: first }, abs });
        continue;
      }
      if (id) seen.set(id, path);
      out.push({ entry: { ...base, type: "file", size: st.size }, abs });
    } else if (st.isFifo) {
      out.push({ entry: { ...base, type: "fifo" }, abs });
    } else if (st.isCharDevice || st.isBlockDevice) {
      const dev = splitDev(st.rdev ?? 0);
      const type = st.isCharDevice ? "chardev" : "blockdev";
      out.push({ entry: { ...base, type, ...dev }, abs });
    } else {
      warn(`${abs}: socket ignored`);
    }
  }
}

/**
 * Reads the extended attributes of every entry but hard links (they share their file's).
 * Returns false if they cannot be read here (the tree is then packed without them).
 */
function addXattrs(
  walked: Walked[],
  read: ((path: string) => Xattr[] | null) | undefined,
): boolean {
  for (const w of walked) {
    if (w.entry.hardLinkTo) continue;
    const x = read?.(w.abs) ?? null;
    if (x === null) return false;
    if (x.length) w.entry.xattrs = x;
  }
  return true;
}

/** Files smaller than this are read whole, without looking for holes. */
const SPARSE_MIN = 1024 * 1024;

/** Packs the tree under `opts.source` into `opts.output`. */
export async function build(opts: BuildOptions): Promise<BuildResult> {
  checkPackOptions(opts, "build");
  expectString(opts.source, "build: source", "a directory");
  try {
    return await buildTree(opts);
  } finally {
    opts.pool?.close(); // packStreams closes it too; not when the walk fails first
  }
}

async function buildTree(opts: BuildOptions): Promise<BuildResult> {
  const warn = opts.onWarning ?? (() => {});
  try {
    if (!(await Deno.stat(opts.source)).isDirectory) {
      throw new HexzError("usage", `${opts.source}: not a directory (use 'hexz pack' for images)`);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new HexzError("not-found", `${opts.source}: no such directory`);
    }
    throw e;
  }
  const walked: Walked[] = [];
  walk(opts.source.replace(/\/+$/, "") || "/", "", walked, warn, new Map());
  // Told once the archive is written: a build that fails says only why.
  const xattrsUnread = !opts.noXattrs && !addXattrs(walked, opts.readXattrs);
  const spec = chunkSpec(opts);
  // Regular files lie one after another in the disk stream (a hard link's content is its
  // first path's).
  const regular = walked.filter((w) => w.entry.type === "file" && !w.entry.hardLinkTo);
  let offset = 0;
  for (const w of regular) {
    w.entry.offset = offset;
    offset += w.entry.size;
  }
  // Sparse files (VM images in a tree) are read without their holes when their data ranges
  // can be found; holes matter in large files only, a small file is not worth the calls.
  const find = (size: number) => size >= SPARSE_MIN ? opts.findDataRanges : undefined;
  // One splitter for every file: its 16 MiB buffer is allocated once, not once per file.
  const splitter = createSplitter(spec);
  /** The blocks of one file, which must still have the size it was listed with; `ranges`
   * finds its data (holes are not read). */
  const cut = async function* (
    w: Walked,
    ranges = find(w.entry.size),
  ): AsyncGenerator<Uint8Array> {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(w.abs, { read: true });
    } catch (e) {
      throw new HexzError("io", `${w.abs}: ${osReason(e)}`);
    }
    let n = 0, mtimeMs = w.entry.mtimeMs;
    try {
      const { input } = fileInput(file, w.abs, w.entry.size, ranges);
      for await (const block of splitter.split(input)) {
        n += block.length;
        yield block;
      }
      mtimeMs = file.statSync().mtime?.getTime() ?? 0;
    } finally {
      file.close();
    }
    if (n !== w.entry.size) {
      throw new HexzError(
        "io",
        `${w.abs}: changed while being packed (${w.entry.size} -> ${n} bytes)`,
      );
    }
    if (mtimeMs !== w.entry.mtimeMs) {
      throw new HexzError("io", `${w.abs}: changed while being packed (written to)`);
    }
  };
  const disk: StreamInput = {
    name: "disk",
    size: offset,
    blocks: (async function* () {
      for (const w of regular) yield* cut(w);
    })(),
    // For the parallel pipeline: the files themselves, which its workers read (same blocks).
    files: async function* (): AsyncGenerator<PipelineFile> {
      for (const w of regular) {
        const { abs: path, entry: { size, mtimeMs } } = w;
        if (size === 0) continue;
        // The data ranges are asked for once, for the holes and for the cuts alike.
        const found = find(size)?.(path) ?? null;
        const inHole = found ? holeTest(checkRanges(found, size)) : undefined;
        // Content-defined cuts need the bytes: found here, read again by the workers.
        const lengths = spec.kind === "fixed"
          ? fixedLengths(size, spec.size)
          : (async function* () {
            for await (const b of cut(w, () => found)) yield b.length;
          })();
        yield { path, size, mtimeMs, lengths, inHole };
      }
    },
  };
  const inputs: StreamInput[] = [disk];
  let memFile: Deno.FsFile | undefined;
  if (opts.memory) {
    try {
      memFile = await Deno.open(opts.memory, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new HexzError("not-found", `${opts.memory}: no such file`);
      }
      throw new HexzError("io", `${opts.memory}: ${(e as Error).message}`);
    }
    const size = (await memFile.stat()).size;
    inputs.push({
      name: "memory",
      size,
      blocks: splitBlocks(fileInput(memFile, opts.memory, size, find(size)).input, spec),
    });
  }
  try {
    let packOpts: PackOptions = {
      ...opts,
      readsFrom: [...(opts.readsFrom ?? []), ...(opts.memory ? [opts.memory] : [])],
      fileTable: () => encodeFileTable(walked.map((w) => w.entry)),
    };
    if (opts.trainDictionary) {
      const size = spec.kind === "fixed" ? spec.size : spec.params.avg;
      const files = regular.filter((w) => w.entry.size > 0).map((w) => w.abs);
      const bytes = regular.reduce((n, w) => n + w.entry.size, 0);
      packOpts = await withTrainedDictionary(packOpts, () => sampleFiles(files, size), bytes);
    }
    const res = await packStreams(packOpts, inputs).finally(() => {
      if (packOpts.dictionary !== opts.dictionary) packOpts.dictionary?.codec.close?.();
    });
    if (xattrsUnread) {
      warn("extended attributes not read: that needs the --allow-ffi permission (or --no-xattrs)");
    }
    return { ...res, entries: walked.length };
  } finally {
    memFile?.close();
  }
}
