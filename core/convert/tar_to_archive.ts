/**
 * tar -> directory archive: one or more tars (plain, gzip or zstd, told apart by their first
 * bytes), read as they stream, become one archive like `hexz build` makes: each regular file
 * chunked on its own into the disk stream, the tree in the file table. Nothing is extracted to
 * disk. Several inputs (WebDataset shards) make one tree, their entries in order; how many
 * table entries came from each input is recorded in the metadata (`tar.inputs`), so that
 * `archiveToTar` can cut the same shards again. See docs/TAR.md.
 *
 * @module
 */
import { basename } from "node:path";
import { HexzError, osReason } from "../errors.ts";
import { createSplitter } from "../chunk/split.ts";
import { encodeFileTable } from "../format/filetable.ts";
import { MAGIC } from "../format/constants.ts";
import {
  checkPackOptions,
  chunkSpec,
  type PackOptions,
  type PackResult,
  packStreams,
  withTrainedDictionary,
} from "../pack/pack.ts";
import { byteReader } from "../tar/byte_reader.ts";
import { decompress, detectCompression } from "../tar/compression.ts";
import { readTar, type TarEntry } from "../tar/reader.ts";
import { tarTree } from "./tar_tree.ts";

/** A tar that is not a file: a pipe, a download. `name` names it in messages and metadata. */
export interface TarStream {
  /** How messages and the metadata name it ("stdin"). */
  name: string;
  /** The tar's bytes (compressed or not), read once. */
  stream: AsyncIterable<Uint8Array>;
}

/** `build`'s options, with tars for the directory. */
export interface TarToArchiveOptions extends Omit<PackOptions, "disk" | "memory" | "fileTable"> {
  /** The tars, in order (several: WebDataset shards, one tree): paths, or streams (read once,
   * so not with `trainDictionary`). */
  inputs: (string | TarStream)[];
}

/** What `tarToArchive` made. */
export interface TarToArchiveResult extends PackResult {
  /** Entries in the file table. */
  entries: number;
}

/** What the metadata records under `tar`: each input's name and its number of table entries. */
export interface TarShards {
  /** Each input in order: its file name (without directories), its table entries. */
  inputs: { name: string; entries: number }[];
}

/** Bytes read from the input file at a time. */
const CHUNK = 1024 * 1024;

/** The raw bytes of `path`, in fresh buffers (the tar reader keeps views of them). */
async function* fileChunks(path: string, onRead: (n: number) => void) {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new HexzError("not-found", `${path}: no such file`);
    }
    throw new HexzError("io", `${path}: ${osReason(e)}`);
  }
  try {
    for (;;) {
      const buf = new Uint8Array(CHUNK);
      let n: number | null;
      try {
        n = f.readSync(buf);
      } catch (e) {
        throw new HexzError("io", `${path}: ${osReason(e)}`);
      }
      if (n === null) return;
      onRead(n);
      yield buf.subarray(0, n);
    }
  } finally {
    f.close();
  }
}

/** The bytes of a stream, counted. */
async function* streamChunks(s: AsyncIterable<Uint8Array>, onRead: (n: number) => void) {
  for await (const c of s) {
    onRead(c.length);
    yield c;
  }
}

const nameOf = (input: string | TarStream) => typeof input === "string" ? input : input.name;

/** The entries of a tar, decompressed as detected. */
async function* tarEntries(
  input: string | TarStream,
  onRead: (n: number) => void,
): AsyncGenerator<TarEntry> {
  const path = nameOf(input);
  const raw = typeof input === "string"
    ? fileChunks(input, onRead)
    : streamChunks(input.stream, onRead);
  // The first bytes tell the compression; a pipe may hand them over a few at a time.
  const firsts: Uint8Array[] = [];
  let have = 0;
  while (have < 8) {
    const r = await raw.next();
    if (r.done) break;
    firsts.push(r.value);
    have += r.value.length;
  }
  const head = new Uint8Array(Math.min(have, 8));
  for (let i = 0, at = 0; at < head.length; i++) {
    head.set(firsts[i].subarray(0, head.length - at), at);
    at += Math.min(firsts[i].length, head.length - at);
  }
  if (head.length >= 4 && MAGIC.every((b, i) => head[i] === b)) {
    throw new HexzError("usage", `${path}: is a hexz archive, not a tar`);
  }
  const kind = detectCompression(head, path);
  const all = (async function* () {
    yield* firsts;
    yield* raw;
  })();
  const r = byteReader(decompress(all, kind, path));
  yield* readTar(r, path);
  // Read to the end: the decompressor checks its checksum (gzip's CRC; zstd's, when the
  // frame has one) only there, and it is what covers the contents, which tar does not.
  while ((await r.skip(1 << 20)) > 0) { /* padding after the end-of-archive marker */ }
}

/** Samples for a dictionary: the first block of the files of the tars (a first pass). */
async function tarSamples(
  inputs: (string | TarStream)[],
  blockSize: number,
): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  let total = 0;
  for (const path of inputs) {
    for await (const e of tarEntries(path, () => {})) {
      if (e.type !== "file" || e.size === 0) continue;
      const buf = new Uint8Array(Math.min(blockSize, e.size));
      let got = 0;
      while (got < buf.length) {
        const n = await e.content.read(buf.subarray(got));
        if (n === null) break;
        got += n;
      }
      out.push(buf.subarray(0, got));
      total += got;
      if (out.length >= 4000 || total >= 16 * 1024 * 1024) return out;
    }
  }
  return out;
}

/** Converts the tars `opts.inputs` into a directory archive at `opts.output`. */
export async function tarToArchive(opts: TarToArchiveOptions): Promise<TarToArchiveResult> {
  try {
    checkPackOptions(opts, "tarToArchive");
    if (
      !Array.isArray(opts.inputs) || opts.inputs.length === 0 ||
      opts.inputs.some((p) =>
        typeof p !== "string" &&
        !(typeof p?.name === "string" && typeof p?.stream?.[Symbol.asyncIterator] === "function")
      )
    ) {
      throw new HexzError(
        "usage",
        "tarToArchive: inputs must be a non-empty list of paths or { name, stream }",
      );
    }
    if (opts.trainDictionary && opts.inputs.some((p) => typeof p !== "string")) {
      throw new HexzError(
        "usage",
        "--train-dict reads the tars twice: give files, not a stream",
      );
    }
    return await convert(opts);
  } finally {
    opts.pool?.close(); // packStreams closes it too; not when a check fails first
  }
}

async function convert(opts: TarToArchiveOptions): Promise<TarToArchiveResult> {
  const { inputs } = opts;
  let total = 0;
  for (const path of inputs) {
    if (typeof path !== "string") continue; // a stream: its size is not known
    try {
      const st = Deno.statSync(path);
      if (!st.isFile) throw new HexzError("usage", `${path}: not a regular file`);
      total += st.size;
    } catch (e) {
      if (e instanceof HexzError) throw e;
      if (e instanceof Deno.errors.NotFound) {
        throw new HexzError("not-found", `${path}: no such file`);
      }
      throw new HexzError("io", `${path}: ${osReason(e)}`);
    }
  }
  const spec = chunkSpec(opts);
  const splitter = createSplitter(spec);
  const tree = tarTree();
  let done = 0, lastReport = 0;
  const onRead = (n: number) => {
    done += n;
    if (opts.onProgress && (done - lastReport >= 4 * 1024 * 1024 || done === total)) {
      lastReport = done;
      opts.onProgress({ stream: "disk", done, total });
    }
  };
  const blocks = async function* () {
    for (let i = 0; i < inputs.length; i++) {
      for await (const e of tarEntries(inputs[i], onRead)) {
        if (tree.add(e, i, `${nameOf(inputs[i])}: ${JSON.stringify(e.name)}`)) {
          yield* splitter.split(e.content);
        }
      }
    }
  };
  let packOpts: PackOptions = {
    ...opts,
    onProgress: undefined,
    readsFrom: [
      ...(opts.readsFrom ?? []),
      ...inputs.filter((p): p is string => typeof p === "string"),
    ],
  };
  if (opts.trainDictionary) {
    const size = spec.kind === "fixed" ? spec.size : spec.params.avg;
    packOpts = await withTrainedDictionary(packOpts, () => tarSamples(inputs, size));
  }
  const table = { entries: 0, perInput: [] as number[] };
  const finish = () => {
    const t = tree.finish(inputs.length);
    table.entries = t.entries.length;
    table.perInput = t.perInput;
    return t.entries;
  };
  const base = packOpts.metadata;
  packOpts.fileTable = () => encodeFileTable(finish());
  packOpts.lateMetadata = () => {
    const tar: TarShards = {
      inputs: inputs.map((p, i) => ({ name: basename(nameOf(p)), entries: table.perInput[i] })),
    };
    return base && typeof base === "object" && !Array.isArray(base)
      ? { ...base, tar }
      : base === undefined
      ? { tar }
      : base;
  };
  const res = await packStreams(packOpts, [{
    name: "disk",
    size: 0,
    streamed: true,
    blocks: blocks(),
  }]).finally(() => {
    if (packOpts.dictionary !== opts.dictionary) packOpts.dictionary?.codec.close?.();
  });
  return { ...res, entries: table.entries };
}
