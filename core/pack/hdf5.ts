/**
 * `packHdf5`: an HDF5 file as a directory archive, one file per dataset at its group path
 * (`model/layer1/weight`) holding the dataset's row-major bytes (numpy's `tobytes()`), one
 * directory per group. The dtype, shape, layout and simple attributes of every dataset and
 * the attributes of every group go into the archive metadata under `hdf5`, with the datasets
 * that were left out and why. See docs/HDF5.md.
 *
 * @module
 */
import { basename } from "node:path";
import { HexzError, osReason } from "../errors.ts";
import { createSplitter, type SequentialInput } from "../chunk/split.ts";
import { encodeFileTable, type FileEntry } from "../format/filetable.ts";
import { expectString } from "../args.ts";
import { fileSource } from "../io/source.ts";
import { type Hdf5Dataset, type Hdf5Listing, listHdf5 } from "../hdf5/datasets.ts";
import {
  checkPackOptions,
  chunkSpec,
  type PackOptions,
  type PackResult,
  packStreams,
} from "./pack.ts";

/** What `packHdf5` takes: `pack`'s options, with an HDF5 file as the source. */
export interface PackHdf5Options extends Omit<PackOptions, "disk" | "memory" | "fileTable"> {
  /** The HDF5 file to pack. */
  source: string;
  /** Called once for each dataset, group or link that is left out, with the reason. */
  onWarning?: (message: string) => void;
}

/** What `packHdf5` did: `pack`'s result and the counts of datasets. */
export interface PackHdf5Result extends PackResult {
  /** Datasets packed. */
  datasets: number;
  /** Datasets, groups and links left out (each reported to `onWarning`). */
  skipped: number;
}

/** What the archive metadata holds under `hdf5`. */
export interface Hdf5Metadata {
  /** The HDF5 file's name (without its directory). */
  source: string;
  /** The superblock version (0-3). */
  superblock: number;
  /** Group path ("" for the root) -> its attributes, for groups that have any. */
  groups: Record<string, Record<string, unknown>>;
  /** Archive path -> what the file holds. */
  datasets: Record<
    string,
    Pick<Hdf5Dataset, "dtype" | "fields" | "shape" | "layout" | "chunks" | "filters" | "attributes">
  >;
  /** What was left out, and why. */
  skipped: { path: string; reason: string }[];
}

/** The `hdf5` metadata of a listing. */
export function hdf5Metadata(source: string, l: Hdf5Listing): Hdf5Metadata {
  const groups: Hdf5Metadata["groups"] = {};
  for (const g of l.groups) if (Object.keys(g.attributes).length) groups[g.path] = g.attributes;
  const datasets: Hdf5Metadata["datasets"] = {};
  for (const d of l.datasets) {
    datasets[d.path] = {
      dtype: d.dtype,
      ...(d.fields ? { fields: d.fields } : {}),
      shape: d.shape,
      layout: d.layout,
      ...(d.chunks ? { chunks: d.chunks, filters: d.filters } : {}),
      attributes: d.attributes,
    };
  }
  return {
    source: basename(source),
    superblock: l.superblock,
    groups,
    datasets,
    skipped: l.skipped,
  };
}

/** Path order of the file table: depth first, names sorted within each directory. */
function byPath(a: string, b: string): number {
  const x = a.split("/"), y = b.split("/");
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return x.length - y.length;
}

/** A dataset's pieces as a sequential input; checks it gives exactly its size. */
function datasetInput(d: Hdf5Dataset): SequentialInput {
  const it = d.read();
  let piece: Uint8Array = new Uint8Array(0);
  let at = 0, total = 0;
  return {
    async read(into) {
      while (at === piece.length) {
        const n = await it.next();
        if (n.done) {
          if (total !== d.size) {
            throw new HexzError("corrupt", `${d.path}: ${total} bytes, not ${d.size}`);
          }
          return null;
        }
        piece = n.value;
        at = 0;
        total += piece.length;
      }
      const k = Math.min(into.length, piece.length - at);
      into.set(piece.subarray(at, at + k));
      at += k;
      return k;
    },
  };
}

/** Packs the HDF5 file `opts.source` into `opts.output`. */
export async function packHdf5(opts: PackHdf5Options): Promise<PackHdf5Result> {
  checkPackOptions(opts, "packHdf5");
  expectString(opts.source, "packHdf5: source", "an HDF5 file");
  const m = opts.metadata;
  if (m !== undefined && (m === null || typeof m !== "object" || Array.isArray(m))) {
    throw new HexzError("usage", "packHdf5: metadata must be an object (hdf5 is added to it)");
  }
  try {
    return await packListing(opts);
  } finally {
    opts.pool?.close();
  }
}

async function packListing(opts: PackHdf5Options): Promise<PackHdf5Result> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(opts.source);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new HexzError("not-found", `${opts.source}: no such file`);
    }
    throw new HexzError("io", `${opts.source}: ${osReason(e)}`);
  }
  if (!st.isFile) throw new HexzError("usage", `${opts.source}: not a file`);
  const listing = await listHdf5(await fileSource(opts.source));
  try {
    for (const s of listing.skipped) opts.onWarning?.(`${s.path}: skipped (${s.reason})`);
    const attrs = {
      mode: 0,
      mtimeMs: st.mtime?.getTime() ?? 0,
      uid: st.uid ?? 0,
      gid: st.gid ?? 0,
      target: "",
    };
    const entries: { entry: FileEntry; dataset?: Hdf5Dataset }[] = [
      ...listing.groups.filter((g) => g.path).map((g) => ({
        entry: { ...attrs, path: g.path, type: "dir" as const, mode: 0o755, size: 0, offset: 0 },
      })),
      ...listing.datasets.map((d) => ({
        entry: {
          ...attrs,
          path: d.path,
          type: "file" as const,
          mode: 0o644,
          size: d.size,
          offset: 0,
        },
        dataset: d,
      })),
    ];
    entries.sort((a, b) => byPath(a.entry.path, b.entry.path));
    let offset = 0;
    for (const e of entries) {
      e.entry.offset = e.dataset ? offset : 0;
      offset += e.entry.size;
    }
    const spec = chunkSpec(opts);
    const splitter = createSplitter(spec);
    const files = entries.filter((e) => e.dataset && e.entry.size > 0);
    const res = await packStreams(
      {
        ...opts,
        readsFrom: [...(opts.readsFrom ?? []), opts.source],
        metadata: {
          ...(opts.metadata as Record<string, unknown> | undefined),
          hdf5: hdf5Metadata(opts.source, listing),
        },
        fileTable: () => encodeFileTable(entries.map((e) => e.entry)),
      },
      [{
        name: "disk",
        size: offset,
        blocks: (async function* () {
          for (const e of files) yield* splitter.split(datasetInput(e.dataset!));
        })(),
      }],
    );
    return { ...res, datasets: listing.datasets.length, skipped: listing.skipped.length };
  } finally {
    listing.close();
  }
}
