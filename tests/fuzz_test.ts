/**
 * Hostile archives: small valid archives, mutated at random (byte flips, overwritten ranges,
 * truncation, garbage appended, and structure-aware field pokes whose checksums are then
 * recomputed so the reader's deeper validation is reached), are opened, checked and read
 * in-process. Each case must end in a HexzError or in data equal to the original (wherever the
 * hash chain still vouches for it); never another exception, a hang, or a read outside the file.
 *
 * The cases run in a Web Worker (this same file) watched by the test: a synchronous endless
 * loop in the reader cannot be interrupted by a timer on its own thread. Seeded and
 * reproducible: HEXZ_FUZZ_SEED picks the seed, HEXZ_FUZZ_CASE reruns one case, HEXZ_FUZZ_MS
 * sets the time budget.
 */
import { assert, assertEquals } from "./_assert.ts";
import { type Archive, type ByteSource, HexzError, memorySource, open, pack } from "../mod.ts";
import { checkArchive } from "../core/read/check.ts";
import { decodeHeader, type ParentRef } from "../core/format/header.ts";
import { equalBytes } from "../core/format/bytes.ts";
import { decodeMaster, encodeMaster, type PageRef } from "../core/format/master.ts";
import { HEADER_SIZE, STREAMS } from "../core/format/constants.ts";
import { blake3 } from "../core/hash/blake3.ts";
import { createZstdDictCodec } from "../core/codec/zstd_dict.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

const KiB = 1024;
/** A case that takes longer than this (async) is a hang. */
const CASE_TIMEOUT_MS = 3000;
/** The watchdog kills the worker when a case shows no progress for this long (sync hang). */
const WATCHDOG_MS = 8000;
/** How long the worker may take to load before its first case. */
const STARTUP_MS = 120_000;

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Rng {
  /** Integer in [0, n). */
  int(n: number): number;
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(xs: readonly T[]): T;
  bytes(n: number): Uint8Array;
}

function rng(seed: number, index: number): Rng {
  const next = mulberry32(seed ^ Math.imul(index + 1, 0x9e3779b1));
  const r: Rng = {
    int: (n) => Math.floor(next() * n),
    range: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    bytes(n) {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256);
      return out;
    },
  };
  return r;
}

// ---------------------------------------------------------------------------------------------
// The archives to mutate

interface Base {
  name: string;
  bytes: Uint8Array;
  /** A thin archive's chain (parent first), intact: only the archive itself is mutated. */
  chain?: Uint8Array[];
}

/** The layout of a valid base: where its records are, for targeted mutations and resealing. */
interface Layout {
  archiveEnd: number;
  masterOffset: number;
  masterLength: number;
  pages: PageRef[];
  /** Present sections, with the header offset of their reference. */
  sections: { offset: number; length: number; ref: number }[];
  streams: Uint8Array[];
}

function layoutOf(base: Base, streams: Uint8Array[]): Layout {
  const h = decodeHeader(base.bytes.subarray(0, HEADER_SIZE), base.bytes.length);
  const pages = decodeMaster(
    base.bytes.subarray(h.master.offset, h.master.offset + h.master.length),
    h,
  );
  return {
    archiveEnd: h.archiveEnd,
    masterOffset: h.master.offset,
    masterLength: h.master.length,
    pages,
    sections: [h.dictionary, h.metadata, h.fileTable]
      .map((x, i) => ({ offset: x.offset, length: x.length, ref: 256 + 48 * i }))
      .filter((x) => x.length > 0),
    streams,
  };
}

function mixed(n: number, seed: number): Uint8Array {
  const d = new Uint8Array(n);
  const text = new TextEncoder().encode("hostile archives must never crash the reader. ");
  for (let o = 0; o < n; o += 8 * KiB) {
    const kind = (o / (8 * KiB) + seed) % 4;
    const piece = Math.min(8 * KiB, n - o);
    if (kind === 0) d.set(pseudoRandom(piece, seed + o), o);
    else if (kind === 1) {
      for (let i = 0; i < piece; i++) d[o + i] = text[(i + seed) % text.length];
    } else if (kind === 2 && o >= 64 * KiB) d.copyWithin(o, o - 64 * KiB, o - 64 * KiB + piece);
    // kind 3: zeros
  }
  return d;
}

/** Packs the bases: lz4 fixed blocks with two streams, zstd+dictionary CDC, raw blocks. */
async function makeBases(dir: string): Promise<{ base: Base; streams: Uint8Array[] }[]> {
  const out: { base: Base; streams: Uint8Array[] }[] = [];
  const write = async (name: string, data: Uint8Array) => {
    await Deno.writeFile(`${dir}/${name}`, data);
    return `${dir}/${name}`;
  };
  // lz4, 1 KiB blocks: the disk needs two index pages (4096 entries each).
  const disk1 = mixed(4200 * KiB, 1);
  const mem1 = mixed(40 * KiB, 2);
  await pack({
    output: `${dir}/lz4.hxz`,
    disk: await write("d1", disk1),
    memory: await write("m1", mem1),
    compression: "lz4",
    blockSize: 1024,
    metadata: { fuzz: "lz4" },
    workers: 1,
  });
  out.push({
    base: { name: "lz4", bytes: await Deno.readFile(`${dir}/lz4.hxz`) },
    streams: [disk1, mem1],
  });
  // zstd with a dictionary, small FastCDC chunks: several pages from little data.
  const disk2 = mixed(2400 * KiB, 3);
  const dict = new TextEncoder().encode(
    "hostile archives must never crash the reader. ".repeat(20),
  );
  await pack({
    output: `${dir}/zstd.hxz`,
    disk: await write("d2", disk2),
    compression: "zstd",
    cdc: { min: 256, avg: 512, max: 2048 },
    metadata: { fuzz: "zstd" },
    dictionary: { bytes: dict, codec: await createZstdDictCodec(dict, 3) },
  });
  out.push({
    base: { name: "zstd+dict", bytes: await Deno.readFile(`${dir}/zstd.hxz`) },
    streams: [disk2, new Uint8Array(0)],
  });
  // Raw blocks, memory stream only.
  const mem3 = mixed(96 * KiB, 4);
  await pack({
    output: `${dir}/raw.hxz`,
    memory: await write("m3", mem3),
    compression: "none",
    blockSize: 4096,
  });
  out.push({
    base: { name: "raw", bytes: await Deno.readFile(`${dir}/raw.hxz`) },
    streams: [new Uint8Array(0), mem3],
  });
  // A sparse disk: pages of zero runs are stored LZ4-compressed (feature bit 4).
  const disk4 = new Uint8Array(8192 * KiB);
  disk4.set(mixed(96 * KiB, 5), 2048 * KiB);
  await pack({
    output: `${dir}/sparse.hxz`,
    disk: await write("d4", disk4),
    compression: "lz4",
    blockSize: 1024,
    workers: 1,
  });
  out.push({
    base: { name: "sparse", bytes: await Deno.readFile(`${dir}/sparse.hxz`) },
    streams: [disk4, new Uint8Array(0)],
  });
  // A thin chain on the lz4 archive: a child with 512 KiB changed, whose parent entries
  // inherit their hashes (bits 1, 4, 6), and a grandchild with that content back as it was,
  // so its entries name the grandparent (bit 5). Only the archive at the end is mutated.
  const disk5 = disk1.slice();
  disk5.set(mixed(512 * KiB, 6), 1024 * KiB);
  const disk6 = disk1.slice();
  disk6.set(pseudoRandom(100 * KiB, 7), 3072 * KiB);
  let parent = `${dir}/lz4.hxz`;
  const chain = [await Deno.readFile(parent)];
  for (const [name, disk] of [["thin", disk5], ["ancestors", disk6]] as const) {
    const base = await open(parent);
    try {
      await pack({
        output: `${dir}/${name}.hxz`,
        disk: await write(`d-${name}`, disk),
        compression: "lz4",
        base,
        basePath: parent,
        workers: 1,
      });
    } finally {
      base.close();
    }
    const bytes = await Deno.readFile(`${dir}/${name}.hxz`);
    out.push({ base: { name, bytes, chain: chain.slice() }, streams: [disk, new Uint8Array(0)] });
    chain.unshift(bytes);
    parent = `${dir}/${name}.hxz`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Mutations

interface Mutated {
  bytes: Uint8Array;
  what: string[];
  /** Checksums recomputed after mutating: the hash chain no longer vouches for the content. */
  resealed: boolean;
}

/** A position, half of the time inside a structural record (header, master, a page, a section). */
function position(r: Rng, size: number, L: Layout): number {
  if (size === 0) return 0;
  if (r.chance(0.5)) return r.int(size);
  const page = L.pages.length ? r.pick(L.pages) : null;
  const sec = L.sections.length ? r.pick(L.sections) : null;
  const spots: [number, number][] = [
    [0, HEADER_SIZE],
    [L.masterOffset, L.masterLength],
    page ? [page.offset, page.length] : [0, HEADER_SIZE],
    sec ? [sec.offset, sec.length] : [L.masterOffset, L.masterLength],
    [L.archiveEnd - 64, 128],
  ];
  const [o, n] = r.pick(spots);
  return Math.max(0, Math.min(size - 1, o + r.int(Math.max(1, n))));
}

const U32_VALUES = [0, 1, 2, 3, 255, 256, 4095, 4096, 4097, 65535, 65536, 2 ** 31, 2 ** 32 - 1];
const U64_VALUES = [0, 1, 4096, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 64 - 1];

function putUint(b: Uint8Array, at: number, width: number, value: number) {
  if (at < 0 || at + width > b.length) return;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (width === 1) dv.setUint8(at, value & 0xff);
  else if (width === 2) dv.setUint16(at, value & 0xffff, true);
  else if (width === 4) dv.setUint32(at, value >>> 0, true);
  else dv.setBigUint64(at, BigInt.asUintN(64, BigInt(Math.floor(value))), true);
}

function readUint(b: Uint8Array, at: number, width: number): number {
  if (at < 0 || at + width > b.length) return 0;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (width === 1) return dv.getUint8(at);
  if (width === 2) return dv.getUint16(at, true);
  if (width === 4) return dv.getUint32(at, true);
  return Number(dv.getBigUint64(at, true));
}

/** Header fields worth poking: [offset, width]. */
const HEADER_FIELDS: [number, number][] = [
  [4, 2],
  [6, 2],
  [12, 4],
  [48, 8],
  [56, 1],
  [57, 1],
  [58, 1],
  [60, 4],
  [64, 4],
  [68, 4],
  [72, 4],
  [80, 8],
  [88, 8],
  [496, 2],
  [1296, 2],
  [1152, 1],
  [1153, 1],
  // stream descriptors
  ...[128, 192].flatMap((s): [number, number][] => [
    [s, 8],
    [s + 8, 8],
    [s + 16, 8],
    [s + 24, 8],
    [s + 32, 8],
    [s + 40, 8],
    [s + 48, 4],
    [s + 52, 4],
    [s + 56, 8],
  ]),
  // dictionary, metadata, file table, reserved section references
  ...[256, 304, 352, 400].flatMap((s): [number, number][] => [[s, 8], [s + 8, 8]]),
];
const MASTER_RECORD_FIELDS: [number, number][] = [
  [0, 1],
  [1, 1],
  [4, 4],
  [8, 8],
  [16, 8],
  [24, 8],
  [32, 4],
];
const PAGE_FIELDS: [number, number][] = [[4, 2], [6, 1], [8, 4], [16, 8], [24, 8]];
const ENTRY_FIELDS: [number, number][] = [
  [0, 8],
  [8, 4],
  [12, 4],
  [16, 1],
  [17, 1],
  [18, 1],
  [19, 1],
  [20, 4],
];

/** Writes a boundary or nearby value into one field of a header, master record, page or entry. */
function poke(r: Rng, b: Uint8Array, L: Layout): string {
  const target = r.int(4);
  let at: number;
  let width: number;
  let where: string;
  if (target === 0 || !L.pages.length) {
    [at, width] = r.pick(HEADER_FIELDS);
    where = `header@${at}`;
  } else if (target === 1) {
    const i = r.int(L.pages.length + 1);
    if (i === L.pages.length) {
      [at, width] = [L.masterOffset + 8, 4];
      where = "master count";
    } else {
      const [o, w] = r.pick(MASTER_RECORD_FIELDS);
      [at, width] = [L.masterOffset + 16 + 72 * i + o, w];
      where = `master record ${i}+${o}`;
    }
  } else {
    const pi = r.int(L.pages.length);
    const p = L.pages[pi];
    if (target === 2) {
      const [o, w] = r.pick(PAGE_FIELDS);
      [at, width] = [p.offset + o, w];
      where = `page ${pi}+${o}`;
    } else {
      const k = r.int(p.count);
      const [o, w] = r.pick(ENTRY_FIELDS);
      [at, width] = [p.offset + 32 + 56 * k + o, w];
      where = `page ${pi} entry ${k}+${o}`;
    }
  }
  const old = readUint(b, at, width);
  const choices = width === 8 ? [...U64_VALUES, b.length, L.archiveEnd] : U32_VALUES;
  const value = r.chance(0.4)
    ? old + r.pick([-2, -1, 1, 2, 64, -64, 1024])
    : r.chance(0.2)
    ? r.int(Math.max(1, b.length))
    : r.pick(choices);
  putUint(b, at, width, Math.max(0, value));
  return `poke ${where} (${width} bytes) ${old} -> ${Math.max(0, value)}`;
}

/** Recomputes every checksum of the hash chain at the base's record positions. */
function reseal(b: Uint8Array, L: Layout) {
  const fits = (o: number, n: number) => o >= 0 && n >= 32 && o + n <= b.length;
  L.pages.forEach((p, i) => {
    if (!fits(p.offset, p.length)) return;
    const sum = blake3(b.subarray(p.offset, p.offset + p.length - 32));
    b.set(sum, p.offset + p.length - 32);
    const rec = L.masterOffset + 16 + 72 * i + 40;
    if (rec + 32 <= L.masterOffset + L.masterLength - 32 && rec + 32 <= b.length) b.set(sum, rec);
  });
  if (fits(L.masterOffset, L.masterLength)) {
    const end = L.masterOffset + L.masterLength - 32;
    const sum = blake3(b.subarray(L.masterOffset, end));
    b.set(sum, end);
    if (b.length >= HEADER_SIZE) b.set(sum, 96);
  }
  for (const x of L.sections) {
    if (x.offset + x.length <= b.length && b.length >= HEADER_SIZE) {
      b.set(blake3(b.subarray(x.offset, x.offset + x.length)), x.ref + 16);
    }
  }
  if (b.length >= HEADER_SIZE) b.set(blake3(b.subarray(0, 4064)), 4064);
}

function mutate(r: Rng, original: Uint8Array, L: Layout): Mutated {
  let b = original.slice();
  const what: string[] = [];
  let resealed = false;
  const n = r.range(1, 3);
  for (let m = 0; m < n; m++) {
    const kind = r.pick(["flip", "flip", "overwrite", "truncate", "extend", "poke", "poke"]);
    if (kind === "flip") {
      const k = r.range(1, 4);
      for (let i = 0; i < k && b.length; i++) {
        const at = position(r, b.length, L);
        const bit = 1 << r.int(8);
        b[at] ^= bit;
        what.push(`flip @${at} ^${bit}`);
      }
    } else if (kind === "overwrite" && b.length) {
      const at = position(r, b.length, L);
      const len = Math.min(b.length - at, r.range(1, 256));
      const fill = r.pick(["random", "zero", "ff"]);
      b.set(
        fill === "random" ? r.bytes(len) : new Uint8Array(len).fill(fill === "zero" ? 0 : 0xff),
        at,
      );
      what.push(`overwrite @${at} +${len} ${fill}`);
    } else if (kind === "truncate") {
      const to = r.chance(0.5)
        ? r.int(b.length + 1)
        : Math.max(0, Math.min(b.length, position(r, b.length, L) + r.range(-2, 2)));
      b = b.slice(0, to);
      what.push(`truncate to ${to}`);
    } else if (kind === "extend") {
      const add = r.chance(0.2) ? 152 * r.range(1, 3) : r.range(1, 4096);
      const c = new Uint8Array(b.length + add);
      c.set(b);
      c.set(r.bytes(add), b.length);
      b = c;
      what.push(`extend +${add}`);
    } else if (kind === "poke") {
      what.push(poke(r, b, L));
      resealed = true;
    }
  }
  if (resealed || r.chance(0.25)) {
    reseal(b, L);
    resealed = true;
    what.push("reseal");
  }
  if (b.length >= HEADER_SIZE && L.pages.length && r.chance(0.15)) {
    b = rewriteMaster(r, b, L, what);
    resealed = true;
  }
  return { bytes: b, what, resealed };
}

/**
 * A new master index, consistent in itself and with the header, appended at the end of the
 * file: with an extra record (any stream id), one record fewer, or two swapped.
 */
function rewriteMaster(r: Rng, b: Uint8Array, L: Layout, what: string[]): Uint8Array<ArrayBuffer> {
  const pages = L.pages.map((p) => ({ ...p }));
  const op = r.pick(["extra", "extra", "drop", "swap"]);
  if (op === "extra") {
    const p = { ...r.pick(pages) };
    p.stream = r.pick([0, 1, 2, 255]);
    const field = r.pick(["none", "count", "firstBlock", "firstOffset", "offset"] as const);
    if (field === "count") p.count = r.range(1, 4096);
    if (field !== "none" && field !== "count") p[field] = r.int(2 ** 40);
    p.length = 32 + 56 * p.count + 32;
    pages.splice(r.int(pages.length + 1), 0, p);
    what.push(`master: extra record (stream ${p.stream}, ${field})`);
  } else if (op === "drop") {
    pages.splice(r.int(pages.length), 1);
    what.push("master: a record dropped");
  } else {
    const i = r.int(pages.length);
    const j = r.int(pages.length);
    [pages[i], pages[j]] = [pages[j], pages[i]];
    what.push(`master: records ${i} and ${j} swapped`);
  }
  const m = encodeMaster(pages);
  const out = new Uint8Array(b.length + m.length);
  out.set(b);
  out.set(m, b.length);
  putUint(out, 48, 8, out.length); // archiveEnd
  putUint(out, 80, 8, b.length); // master offset
  putUint(out, 88, 8, m.length); // master length
  out.set(m.subarray(m.length - 32), 96); // master hash
  out.set(blake3(out.subarray(0, 4064)), 4064);
  return out;
}

// ---------------------------------------------------------------------------------------------
// One case

class FuzzFailure extends Error {}

/** A memorySource that fails the case (not with a HexzError) on any out-of-file request. */
function guardedSource(bytes: Uint8Array, stats: { reads: number; bytes: number }): ByteSource {
  const inner = memorySource(bytes, "fuzz.hxz");
  return {
    size: bytes.length,
    name: inner.name,
    read(offset, length) {
      if (
        !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 ||
        length < 0 || offset + length > bytes.length
      ) {
        throw new FuzzFailure(
          `reader asked the source for ${length} bytes at ${offset} (file: ${bytes.length} bytes)`,
        );
      }
      stats.reads++;
      stats.bytes += length;
      if (stats.bytes > 256 * bytes.length + 64 * 1024 * 1024) {
        throw new FuzzFailure(`reader read ${stats.bytes} bytes from a ${bytes.length}-byte file`);
      }
      return inner.read(offset, length);
    },
    close() {},
  };
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Opens the parents of a thin base from its chain's bytes, by identity. */
function chainResolver(chain: Uint8Array[]): (ref: ParentRef) => Promise<Archive> {
  const resolve = async (ref: ParentRef): Promise<Archive> => {
    for (const bytes of chain) {
      const a = await open(memorySource(bytes, "parent.hxz"), {
        resolveParent: resolve,
        lazyParents: true,
      });
      if (equalBytes(a.header.uuid, ref.uuid) && equalBytes(a.header.rootHash, ref.rootHash)) {
        return a;
      }
      a.close();
    }
    throw new HexzError("parent", "fuzz: not a parent in the chain");
  };
  return resolve;
}

/** Runs one mutated archive; returns the outcome's name, throws FuzzFailure on a violation. */
async function runCase(m: Mutated, r: Rng, L: Layout, chain: Uint8Array[]): Promise<string> {
  const stats = { reads: 0, bytes: 0 };
  let stage = "open";
  try {
    const a = await open(guardedSource(m.bytes, stats), {
      resolveParent: chainResolver(chain),
    });
    try {
      stage = "check";
      let outcome = "check ok";
      await checkArchive(a).catch((e) => {
        // The reads below still exercise the rest.
        if (e instanceof HexzError) return outcome = `check: ${e.code}`;
        throw e;
      });
      let failedReads = 0;
      stage = "read";
      for (let s = 0; s < STREAMS.length; s++) {
        const size = a.size(s);
        if (!m.resealed && size !== L.streams[s].length) {
          throw new FuzzFailure(`${STREAMS[s]} size ${size}, original ${L.streams[s].length}`);
        }
        for (let k = 0; k < 6 && size > 0; k++) {
          const offset = r.int(size);
          // A caller asks for what it can hold: a resealed header may claim any stream size.
          const length = r.chance(0.1) && size - offset <= 8 * 1024 * KiB
            ? size - offset
            : r.range(1, Math.min(size - offset, 96 * KiB));
          let data: Uint8Array;
          try {
            data = await a.read(s, offset, length);
          } catch (e) {
            if (e instanceof HexzError) {
              failedReads++;
              continue;
            }
            throw e;
          }
          if (data.length !== length) throw new FuzzFailure(`read returned ${data.length} bytes`);
          if (!m.resealed && !equal(data, L.streams[s].subarray(offset, offset + length))) {
            throw new FuzzFailure(
              `${STREAMS[s]} read at ${offset} +${length} returned wrong bytes without an error`,
            );
          }
        }
      }
      stage = "sections";
      await a.metadata().catch((e) => {
        if (!(e instanceof HexzError)) throw e;
      });
      return `${outcome}${failedReads ? ", some reads refused" : ""}`;
    } finally {
      a.close();
    }
  } catch (e) {
    if (e instanceof HexzError) return `${stage}: ${e.code}`;
    throw e;
  }
}

interface CaseMsg {
  type: "case";
  index: number;
  base: string;
  what: string[];
}
interface DoneMsg {
  type: "done";
  cases: number;
  outcomes: Record<string, number>;
}
interface FailMsg {
  type: "fail";
  index: number;
  base: string;
  what: string[];
  error: string;
}

async function fuzz(
  seed: number,
  budgetMs: number,
  only: number | null,
  bases: { base: Base; streams: Uint8Array[] }[],
  post: (m: CaseMsg | DoneMsg | FailMsg) => void,
) {
  const layouts = bases.map((b) => layoutOf(b.base, b.streams));
  const outcomes: Record<string, number> = {};
  const start = Date.now();
  let i = only ?? 0;
  let cases = 0;
  for (; only === null ? Date.now() - start < budgetMs : i === only; i++) {
    const r = rng(seed, i);
    const bi = i % bases.length;
    const m = mutate(r, bases[bi].base.bytes, layouts[bi]);
    const base = bases[bi].base.name;
    post({ type: "case", index: i, base, what: m.what });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const outcome = await Promise.race([
        runCase(m, r, layouts[bi], bases[bi].base.chain ?? []),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new FuzzFailure(`no result within ${CASE_TIMEOUT_MS} ms (async hang)`)),
            CASE_TIMEOUT_MS,
          );
        }),
      ]);
      const key = `${base} ${m.resealed ? "resealed" : "plain"}: ${outcome}`;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    } catch (e) {
      post({
        type: "fail",
        index: i,
        base,
        what: m.what,
        error: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e),
      });
      return;
    } finally {
      clearTimeout(timer);
    }
    cases++;
  }
  post({ type: "done", cases, outcomes });
}

// ---------------------------------------------------------------------------------------------
// Worker side and test side

const inWorker = "WorkerGlobalScope" in globalThis;

if (inWorker) {
  const w = globalThis as unknown as {
    onmessage: ((e: MessageEvent) => void) | null;
    postMessage(m: unknown): void;
  };
  w.onmessage = (e: MessageEvent) => {
    const { seed, budgetMs, only, bases } = e.data;
    fuzz(seed, budgetMs, only, bases, (m) => w.postMessage(m)).catch((err) =>
      w.postMessage({
        type: "fail",
        index: -1,
        base: "",
        what: [],
        error: String(err?.stack ?? err),
      })
    );
  };
} else {
  Deno.test("hostile archives: mutated files end in HexzError or correct data, never a crash or hang", async () => {
    const env = (k: string) => Deno.env.get(k);
    const seed = Number(env("HEXZ_FUZZ_SEED") ?? 0x6865787a);
    const budgetMs = Number(env("HEXZ_FUZZ_MS") ?? 10_000);
    const only = env("HEXZ_FUZZ_CASE") !== undefined ? Number(env("HEXZ_FUZZ_CASE")) : null;
    console.log(`fuzz seed ${seed} (HEXZ_FUZZ_SEED=${seed}), budget ${budgetMs} ms`);
    const [dir, done] = await tempDir();
    let worker: Worker | null = null;
    try {
      const bases = await makeBases(dir);
      for (const b of bases) {
        // The bases themselves must be intact, or the oracle means nothing.
        const a = await open(memorySource(b.base.bytes), {
          resolveParent: chainResolver(b.base.chain ?? []),
        });
        await checkArchive(a);
        a.close();
      }
      // ... and hold the features they stand for.
      const features = Object.fromEntries(
        bases.map((
          b,
        ) => [
          b.base.name,
          decodeHeader(b.base.bytes.subarray(0, HEADER_SIZE), b.base.bytes.length).features,
        ]),
      );
      assertEquals(features.sparse & (1 << 4), 1 << 4, "sparse: compressed index pages");
      assertEquals(features.thin & 0b1010010, 0b1010010, "thin: thin, compressed, inherited");
      assertEquals(features.ancestors & (1 << 5), 1 << 5, "ancestors: refers past its parent");
      worker = new Worker(import.meta.url, { type: "module" });
      const w = worker;
      const result = await new Promise<DoneMsg>((resolve, reject) => {
        let current: CaseMsg | null = null;
        let dog: ReturnType<typeof setTimeout> | undefined;
        const arm = () => {
          clearTimeout(dog);
          // Before its first case the worker is still loading (and, on a loaded machine,
          // type-checking) its modules: that is not a hang, so it gets longer.
          dog = setTimeout(() => {
            reject(
              new Error(
                current
                  ? `case ${current.index} (${current.base}: ${current.what.join("; ")}) ` +
                    `made no progress for ${WATCHDOG_MS} ms: a synchronous hang ` +
                    `(rerun: HEXZ_FUZZ_SEED=${seed} HEXZ_FUZZ_CASE=${current.index})`
                  : `the fuzz worker ran no case within ${STARTUP_MS} ms of its start`,
              ),
            );
          }, current ? WATCHDOG_MS : STARTUP_MS);
        };
        w.onmessage = (e: MessageEvent<CaseMsg | DoneMsg | FailMsg>) => {
          const m = e.data;
          if (m.type === "case") {
            current = m;
            arm();
          } else if (m.type === "done") {
            clearTimeout(dog);
            resolve(m);
          } else {
            clearTimeout(dog);
            reject(
              new Error(
                `case ${m.index} (${m.base}: ${m.what.join("; ")}) failed ` +
                  `(rerun: HEXZ_FUZZ_SEED=${seed} HEXZ_FUZZ_CASE=${m.index}):\n${m.error}`,
              ),
            );
          }
        };
        w.onerror = (e) => {
          clearTimeout(dog);
          e.preventDefault();
          reject(new Error(`worker error: ${e.message}`));
        };
        arm();
        w.postMessage({
          seed,
          budgetMs,
          only,
          bases: bases.map(({ base, streams }) => ({ base, streams })),
        });
      });
      const lines = Object.entries(result.outcomes).sort().map(([k, v]) => `  ${v}\t${k}`);
      console.log(`fuzz: ${result.cases} cases, seed ${seed}\n${lines.join("\n")}`);
      assert(result.cases >= (only === null ? 50 : 1), `only ${result.cases} cases ran`);
    } finally {
      worker?.terminate();
      await done();
    }
  });
}
