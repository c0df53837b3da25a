/**
 * An HDF5 file as a list of datasets, each a virtual file: its path (the group path), numpy
 * dtype, shape, byte size, simple attributes as JSON, and its row-major bytes. Groups are
 * walked depth first from the root, names sorted; a group reached twice (hard links can make
 * cycles) is walked once. Datasets this reader cannot give the bytes of (see
 * docs/HDF5.md) are listed under `skipped` with the reason; a damaged file is an error.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import type { ByteSource } from "../io/source.ts";
import { bad, UNDEF } from "./cursor.ts";
import { type H5File, openH5 } from "./h5file.ts";
import { findMessage, findShared, type Message, MSG, readObjectHeader } from "./object_header.ts";
import { type Field, parseDatatype } from "./datatype.ts";

export type { Field };
import { parseDataspace } from "./dataspace.ts";
import { type Layout, parseLayout } from "./layout.ts";
import { type Filter, parseFilters, SUPPORTED, unfilter } from "./filters.ts";
import { parseFill } from "./fill.ts";
import { parseAttribute } from "./attribute.ts";
import { globalHeap } from "./heap.ts";
import { groupLinks, isGroup } from "./link.ts";
import { gridOf, listChunks } from "./chunks.ts";
import { openFractalHeap } from "./fractal_heap.ts";
import { btree2Records } from "./btree2.ts";

/** One dataset of an HDF5 file, as a virtual file. */
export interface Hdf5Dataset {
  /** The dataset's path from the root group, without a leading slash: "model/layer1/weight". */
  path: string;
  /** numpy's dtype string: "<f4", "|i1", "|b1", "|S10"; "|V" and the size for opaque and
   * compound types. */
  dtype: string;
  /** Compound types: each member's name, dtype and byte offset in the element. */
  fields?: Field[];
  /** Dimensions, outermost first; [] for a scalar. */
  shape: number[];
  /** Bytes of the row-major array: elements times element size. */
  size: number;
  /** Where HDF5 keeps the elements: in the header, in one range of the file, or in chunks. */
  layout: "compact" | "contiguous" | "chunked";
  /** Chunked datasets: the chunk shape. */
  chunks?: number[];
  /** Chunked datasets: the filters' names, in pipeline order ("shuffle", "deflate" ...). */
  filters?: string[];
  /** Simple attributes (numbers, booleans, strings and lists of them). */
  attributes: Record<string, unknown>;
  /**
   * Contiguous datasets whose storage is allocated: where their bytes lie in the HDF5 file
   * (absolute offset, `size` bytes), readable as they are.
   */
  fileOffset?: number;
  /** The row-major bytes, in order, in pieces (each valid until the next is asked for). */
  read(): AsyncGenerator<Uint8Array>;
}

/** One group of an HDF5 file. */
export interface Hdf5Group {
  /** The group's path from the root, without a leading slash; "" for the root group. */
  path: string;
  /** Simple attributes (numbers, booleans, strings and lists of them). */
  attributes: Record<string, unknown>;
}

/** What `listHdf5` found in a file. */
export interface Hdf5Listing {
  /** The superblock version (0-3). */
  superblock: number;
  /** The groups walked, depth first, names sorted; the root first. */
  groups: Hdf5Group[];
  /** The datasets whose bytes can be read, in the same order. */
  datasets: Hdf5Dataset[];
  /** Datasets, groups and links left out, each with the reason. */
  skipped: { path: string; reason: string }[];
  /** Closes the byte source the datasets read from. */
  close(): void;
}

/** The longest path an archive's file table keeps. */
const MAX_PATH = 4096;
/** The most groups and datasets one file may have here. */
const MAX_OBJECTS = 1_000_000;
/** The most bytes assembled at once from one row of chunks. */
export const MAX_SLAB = 1 << 30;
/** Contiguous data is read in pieces of this size. */
const PIECE = 4 << 20;

/**
 * Lists the groups and datasets of the HDF5 file in `src`. The bytes are read from `src`
 * when asked for: keep it open until done (`close` closes it).
 */
export async function listHdf5(src: ByteSource): Promise<Hdf5Listing> {
  let f: H5File;
  try {
    f = await openH5(src);
  } catch (e) {
    src.close();
    throw e;
  }
  const heap = globalHeap(f);
  const out: Hdf5Listing = {
    superblock: f.sb.version,
    groups: [],
    datasets: [],
    skipped: [],
    close: () => src.close(),
  };
  /** Groups walked: object header -> path. */
  const walked = new Map<number, string>();
  let objects = 0;
  const visit = async (at: number, path: string, depth: number): Promise<void> => {
    if (++objects > MAX_OBJECTS) bad(src.name, `more than ${MAX_OBJECTS} objects`);
    const what = `${src.name}: ${path ? `'/${path}'` : "root group"}`;
    const msgs = await readObjectHeader(f, at, what);
    if (isGroup(msgs)) {
      const first = walked.get(at);
      if (first !== undefined) {
        out.skipped.push({ path, reason: `another name of the group '/${first}', walked once` });
        return;
      }
      walked.set(at, path);
      if (depth > 256) bad(what, "groups nested more than 256 deep");
      let links;
      try {
        links = await groupLinks(f, msgs, what);
      } catch (e) {
        if (e instanceof HexzError && e.code === "unsupported" && path) {
          out.skipped.push({ path, reason: e.message.slice(what.length + 2) });
          return;
        }
        throw e;
      }
      out.groups.push({ path, attributes: await attributes(f, msgs, heap, what) });
      links.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
      for (const l of links) {
        const p = path ? `${path}/${l.name}` : l.name;
        if (!l.name || l.name === "." || l.name === ".." || /[/\\\0]/.test(l.name)) {
          out.skipped.push({
            path: p,
            reason: `the name ${JSON.stringify(l.name)} cannot be a file name`,
          });
        } else if (new TextEncoder().encode(p).length > MAX_PATH) {
          out.skipped.push({
            path: p,
            reason: `a path longer than ${MAX_PATH} bytes`,
          });
        } else if (l.kind !== "hard") {
          out.skipped.push({
            path: p,
            reason: `${l.kind === "soft" ? "a soft" : "an external"} link, not followed`,
          });
        } else {
          await visit(l.address, p, depth + 1);
        }
      }
      return;
    }
    if (!path) bad(what, "is not a group");
    if (!msgs.some((m) => m.type === MSG.layout)) {
      const committed = msgs.some((m) => m.type === MSG.datatype);
      out.skipped.push({
        path,
        reason: committed ? "a committed datatype, not data" : "neither a group nor a dataset",
      });
      return;
    }
    try {
      out.datasets.push(await describe(f, msgs, path, what, heap));
    } catch (e) {
      if (!(e instanceof HexzError && e.code === "unsupported")) throw e;
      out.skipped.push({
        path,
        reason: e.message.startsWith(what) ? e.message.slice(what.length + 2) : e.message,
      });
    }
  };
  try {
    await visit(f.sb.root, "", 0);
  } catch (e) {
    src.close();
    throw e;
  }
  return out;
}

async function attributes(
  f: H5File,
  msgs: Message[],
  heap: ReturnType<typeof globalHeap>,
  what: string,
): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const add = async (data: Uint8Array) => {
    try {
      const a = await parseAttribute(f, f.over(data, `${what}: attribute`), heap);
      if (a.value !== undefined) out[a.name] = a.value;
    } catch (e) {
      // An attribute this reader cannot take is left out, like one that is not simple.
      if (!(e instanceof HexzError && e.code === "unsupported")) throw e;
    }
  };
  for (const m of msgs) {
    if (m.type === MSG.attribute && !(m.flags & 0x02)) await add(m.data);
  }
  // Dense storage (more than 8 attributes with libver 'latest'): attribute messages in a
  // fractal heap, found through the name index (a v2 B-tree of type 8 records: heap ID first).
  const info = msgs.find((m) => m.type === MSG.attributeInfo);
  if (info) {
    const c = f.over(info.data, `${what}: attribute info message`);
    if (c.u8() !== 0) bad(c.what, "unknown version");
    if (c.u8() & 1) c.skip(2);
    const heapAt = f.abs(c.address("fractal heap address"));
    const index = f.abs(c.address("name index address"));
    if (heapAt !== UNDEF && index !== UNDEF) {
      try {
        const fh = await openFractalHeap(f, heapAt, `${what}: attributes`);
        const { records } = await btree2Records(f, index, [8], `${what}: attribute name index`);
        for (const r of records) await add(await fh.get(r.subarray(0, 8)));
      } catch (e) {
        // A heap this reader cannot follow costs the attributes, not the data.
        if (!(e instanceof HexzError && e.code === "unsupported")) throw e;
      }
    }
  }
  return out;
}

function need(m: Message | undefined, what: string, name: string): Message {
  if (!m) bad(what, `dataset without a ${name} message`);
  return m;
}

async function describe(
  f: H5File,
  msgs: Message[],
  path: string,
  what: string,
  heap: ReturnType<typeof globalHeap>,
): Promise<Hdf5Dataset> {
  const type = parseDatatype(
    f.over(
      need(await findShared(f, msgs, MSG.datatype, what), what, "datatype").data,
      `${what}: datatype`,
    ),
  );
  const space = parseDataspace(
    f.over(
      need(findMessage(msgs, MSG.dataspace, what), what, "dataspace").data,
      `${what}: dataspace`,
    ),
  );
  const layout = parseLayout(
    f.over(need(findMessage(msgs, MSG.layout, what), what, "layout").data, `${what}: layout`),
  );
  if (type.dtype === null) {
    throw new HexzError("unsupported", `${what}: the ${type.reason} is not supported`);
  }
  if (space.isNull) {
    throw new HexzError("unsupported", `${what}: a null dataspace (no data) is not supported`);
  }
  if (findMessage(msgs, MSG.externalFiles, what)) {
    throw new HexzError("unsupported", `${what}: data in external files is not supported`);
  }
  const pipeline = findMessage(msgs, MSG.filters, what);
  const filters = pipeline ? parseFilters(f.over(pipeline.data, `${what}: filter pipeline`)) : [];
  for (const flt of filters) {
    if (!SUPPORTED.has(flt.id)) {
      throw new HexzError("unsupported", `${what}: the ${flt.name} filter is not supported`);
    }
  }
  const fillMsg = findMessage(msgs, MSG.fill, what) ?? findMessage(msgs, MSG.fillOld, what);
  let fill = fillMsg
    ? parseFill(f.over(fillMsg.data, `${what}: fill value`), fillMsg.type === MSG.fillOld)
    : null;
  if (fill && fill.length !== type.size) fill = null;
  const size = space.count * type.size;
  if (!Number.isSafeInteger(size)) bad(what, "too large");
  const base = {
    path,
    dtype: type.dtype,
    ...(type.fields ? { fields: type.fields } : {}),
    shape: space.shape,
    size,
    attributes: await attributes(f, msgs, heap, what),
  };
  if (layout.class === "compact") {
    if (layout.data.length < size) {
      bad(what, `compact data of ${layout.data.length} bytes, not ${size}`);
    }
    const data = layout.data.slice(0, size);
    return {
      ...base,
      layout: "compact",
      read: async function* () {
        yield data;
      },
    };
  }
  if (layout.class === "contiguous") {
    const at = f.abs(layout.address);
    if (at === UNDEF) {
      return { ...base, layout: "contiguous", read: () => fillPieces(size, fill, type.size) };
    }
    if (layout.size < size) bad(what, `contiguous storage of ${layout.size} bytes, not ${size}`);
    if (at + size > f.src.size) {
      bad(what, `${size} bytes at ${at} lie outside the file (${f.src.size} bytes)`);
    }
    return {
      ...base,
      layout: "contiguous",
      fileOffset: at,
      read: async function* () {
        for (let o = 0; o < size; o += PIECE) {
          yield await f.read(at + o, Math.min(PIECE, size - o), what);
        }
      },
    };
  }
  return chunked(f, base, space.maxShape, layout, type.size, fill, filters, what);
}

function chunked(
  f: H5File,
  base: Omit<Hdf5Dataset, "layout" | "read">,
  maxShape: number[],
  layout: Extract<Layout, { class: "chunked" }>,
  es: number,
  fill: Uint8Array | null,
  filters: Filter[],
  what: string,
): Hdf5Dataset {
  const { shape, size } = base;
  const chunk = layout.chunk;
  if (chunk.length !== shape.length) {
    bad(what, `chunks of rank ${chunk.length} for a dataset of rank ${shape.length}`);
  }
  if (chunk.some((d) => d < 1)) bad(what, `chunk shape ${chunk.join("x")}`);
  if (layout.elementSize !== es) bad(what, `chunk element size ${layout.elementSize}, not ${es}`);
  const chunkBytes = chunk.reduce((a, b) => a * b, es);
  if (chunkBytes > 2 ** 32) bad(what, `chunks of ${chunkBytes} bytes (at most 4 GiB)`);
  const rowBytes = shape.slice(1).reduce((a, b) => a * b, es);
  const slabMax = Math.min(chunk[0], shape[0] ?? 0) * rowBytes;
  if (slabMax > MAX_SLAB) {
    throw new HexzError(
      "unsupported",
      `${what}: a row of chunks is ${slabMax} bytes, more than the ${MAX_SLAB} assembled at once`,
    );
  }
  return {
    ...base,
    layout: "chunked",
    chunks: chunk,
    filters: filters.map((x) => x.name),
    read: async function* () {
      if (size === 0) return;
      const records = await listChunks(f, layout, shape, maxShape, chunkBytes, what);
      const rows = gridOf(shape, chunk)[0];
      const byRow = new Map<number, typeof records>();
      for (const r of records) {
        const k = r.offsets[0] / chunk[0];
        byRow.set(k, [...byRow.get(k) ?? [], r]);
      }
      // Several rows of chunks at a time when they are small, up to about PIECE bytes.
      const step = Math.max(1, Math.floor(PIECE / (chunk[0] * rowBytes)));
      for (let row = 0; row < rows; row += step) {
        const first = row * chunk[0];
        const n = Math.min(step * chunk[0], shape[0] - first);
        let any = false;
        for (let k = row; k < Math.min(rows, row + step) && !any; k++) any = byRow.has(k);
        if (!any) {
          // No chunk was ever written here: the fill value, without assembling anything.
          yield* fillPieces(n * rowBytes, fill, es);
          continue;
        }
        const slab = new Uint8Array(n * rowBytes);
        fillPattern(slab, fill, es);
        for (let k = row; k < Math.min(rows, row + step); k++) {
          for (const r of byRow.get(k) ?? []) {
            const w = `${what}: chunk at [${r.offsets.join(",")}]`;
            const stored = await f.read(r.address, r.size, w);
            const data = filters.length
              ? unfilter(filters, r.filterMask, stored, chunkBytes, w)
              : stored;
            if (data.length !== chunkBytes) bad(w, `${data.length} bytes, not ${chunkBytes}`);
            place(slab, data, shape, chunk, r.offsets, first, es);
          }
        }
        yield slab;
      }
    },
  };
}

/** Copies the part of a chunk (at `offsets`) that lies inside the dataset into a slab of
 * whole rows that starts at row `first`. */
function place(
  slab: Uint8Array,
  data: Uint8Array,
  shape: number[],
  chunk: number[],
  offsets: number[],
  first: number,
  es: number,
) {
  const rank = shape.length;
  const extent = chunk.map((c, d) => Math.min(c, shape[d] - offsets[d]));
  const run = extent[rank - 1] * es;
  // Strides in elements, of the dataset (its slab) and of the chunk.
  const ds = new Array<number>(rank), cs = new Array<number>(rank);
  ds[rank - 1] = cs[rank - 1] = 1;
  for (let d = rank - 2; d >= 0; d--) {
    ds[d] = ds[d + 1] * shape[d + 1];
    cs[d] = cs[d + 1] * chunk[d + 1];
  }
  const idx = new Array<number>(rank).fill(0);
  while (true) {
    // Element offsets in the chunk and in the slab (whose row 0 is the dataset's row `first`).
    let src = 0, dst = offsets[rank - 1] - (rank === 1 ? first : 0);
    for (let d = 0; d < rank - 1; d++) {
      src += idx[d] * cs[d];
      dst += (offsets[d] + idx[d] - (d === 0 ? first : 0)) * ds[d];
    }
    slab.set(data.subarray(src * es, src * es + run), dst * es);
    let d = rank - 2;
    while (d >= 0 && ++idx[d] === extent[d]) idx[d--] = 0;
    if (d < 0) break;
  }
}

function fillPattern(buf: Uint8Array, fill: Uint8Array | null, es: number) {
  if (!fill || fill.every((b) => b === 0) || buf.length === 0) return;
  buf.set(fill.subarray(0, Math.min(es, buf.length)));
  for (let n = es; n < buf.length; n *= 2) buf.copyWithin(n, 0, Math.min(n, buf.length - n));
}

async function* fillPieces(size: number, fill: Uint8Array | null, es: number) {
  const piece = Math.max(es, Math.floor(PIECE / es) * es);
  const buf = new Uint8Array(Math.min(size, piece));
  fillPattern(buf, fill, es);
  for (let o = 0; o < size; o += buf.length) yield buf.subarray(0, Math.min(buf.length, size - o));
}
