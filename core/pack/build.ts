/**
 * `build`: packs a directory tree into a directory archive. Every regular file is chunked on
 * its own (files are natural boundaries, so unchanged files dedup against earlier versions);
 * contents go to the disk stream one after another, and the file table records each file's
 * place, type, mode, times and owner, and each symlink's target.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { type SequentialInput, splitBlocks } from "../chunk/split.ts";
import { checkRanges, sparseReads } from "./sparse.ts";
import { sampleFiles } from "./dict_train.ts";
import { encodeFileTable, type FileEntry } from "../format/filetable.ts";
import {
  chunkSpec,
  type PackOptions,
  type PackResult,
  packStreams,
  type StreamInput,
  withTrainedDictionary,
} from "./pack.ts";

export interface BuildOptions extends Omit<PackOptions, "disk" | "memory"> {
  /** The directory to pack. */
  source: string;
  /** A memory dump to store beside the tree (auxiliary stream). */
  memory?: string;
  /** Called for entries that are skipped (sockets, devices, unreadable files). */
  onWarning?: (message: string) => void;
}

export interface BuildResult extends PackResult {
  entries: number;
}

interface Walked {
  entry: FileEntry;
  abs: string;
}

async function walk(root: string, rel: string, out: Walked[], warn: (m: string) => void) {
  const dir = rel ? `${root}/${rel}` : root;
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  names.sort();
  for (const name of names) {
    const path = rel ? `${rel}/${name}` : name;
    const abs = `${root}/${path}`;
    const st = await Deno.lstat(abs);
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
      out.push({ entry: { ...base, type: "symlink", target: await Deno.readLink(abs) }, abs });
    } else if (st.isDirectory) {
      out.push({ entry: { ...base, type: "dir" }, abs });
      await walk(root, path, out, warn);
    } else if (st.isFile) {
      out.push({ entry: { ...base, type: "file", size: st.size }, abs });
    } else {
      warn(`${abs}: skipped (not a file, directory or symlink)`);
    }
  }
}

/** Packs the tree under `opts.source` into `opts.output`. */
export async function build(opts: BuildOptions): Promise<BuildResult> {
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
  await walk(opts.source.replace(/\/+$/, "") || "/", "", walked, warn);
  const spec = chunkSpec(opts);
  // Sparse files (VM images in a tree) are read without their holes when their data ranges
  // can be found.
  const input = (file: Deno.FsFile, path: string, size: number): SequentialInput => {
    const found = opts.findDataRanges?.(path);
    return found ? sparseReads(file, size, checkRanges(found, size)) : file;
  };
  const total = walked.reduce((n, w) => n + w.entry.size, 0);
  let offset = 0;
  const disk: StreamInput = {
    name: "disk",
    size: total,
    blocks: (async function* () {
      for (const w of walked) {
        if (w.entry.type !== "file") continue;
        w.entry.offset = offset;
        let file: Deno.FsFile;
        try {
          file = await Deno.open(w.abs, { read: true });
        } catch (e) {
          throw new HexzError("io", `${w.abs}: ${(e as Error).message}`);
        }
        let n = 0;
        try {
          for await (const block of splitBlocks(input(file, w.abs, w.entry.size), spec)) {
            n += block.length;
            yield block;
          }
        } finally {
          file.close();
        }
        if (n !== w.entry.size) {
          throw new HexzError(
            "io",
            `${w.abs}: changed while being packed (${w.entry.size} -> ${n} bytes)`,
          );
        }
        offset += n;
      }
    })(),
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
      blocks: splitBlocks(input(memFile, opts.memory, size), spec),
    });
  }
  try {
    let packOpts: PackOptions = {
      ...opts,
      fileTable: () => encodeFileTable(walked.map((w) => w.entry)),
    };
    if (opts.trainDictionary) {
      const size = spec.kind === "fixed" ? spec.size : spec.params.avg;
      const files = walked.filter((w) => w.entry.type === "file" && w.entry.size > 0)
        .map((w) => w.abs);
      packOpts = await withTrainedDictionary(packOpts, () => sampleFiles(files, size));
    }
    const res = await packStreams(packOpts, inputs).finally(() => {
      if (packOpts.dictionary !== opts.dictionary) packOpts.dictionary?.codec.close?.();
    });
    return { ...res, entries: walked.length };
  } finally {
    memFile?.close();
  }
}
