/**
 * The filter pipeline message (0x0B) and the filters this reader undoes: deflate (1, with
 * node:zlib, never inflating past the chunk's size), shuffle (2) and fletcher32 (3, checked).
 * A chunk's filter mask skips the filters whose bits are set. Any other filter (szip, nbit,
 * scaleoffset, lzf, blosc ...) makes the dataset unreadable here; `parseFilters` names it.
 *
 * @module
 */
import { inflateSync } from "node:zlib";
import { bad, type Cursor } from "./cursor.ts";
import { fletcher32 } from "./checksum.ts";

export interface Filter {
  id: number;
  name: string;
  /** Bit 0: optional (a chunk may have skipped it; its mask says so). */
  flags: number;
  values: number[];
}

const NAMES: Record<number, string> = {
  1: "deflate",
  2: "shuffle",
  3: "fletcher32",
  4: "szip",
  5: "nbit",
  6: "scaleoffset",
  32000: "lzf",
  32001: "blosc",
  32015: "zstd",
};

/** The filters this reader can undo. */
export const SUPPORTED = new Set([1, 2, 3]);

export function parseFilters(c: Cursor): Filter[] {
  const version = c.u8();
  if (version !== 1 && version !== 2) bad(c.what, `filter pipeline version ${version}`);
  const n = c.u8();
  if (n > 32) bad(c.what, `${n} filters (at most 32)`);
  if (version === 1) c.skip(6);
  const out: Filter[] = [];
  for (let i = 0; i < n; i++) {
    const id = c.u16();
    const nameLength = version === 1 || id >= 256 ? c.u16() : 0;
    const flags = c.u16();
    const count = c.u16();
    let name = NAMES[id] ?? `filter ${id}`;
    if (nameLength) {
      const raw = c.take(version === 1 ? (nameLength + 7) & ~7 : nameLength);
      const end = raw.indexOf(0);
      const given = new TextDecoder().decode(raw.subarray(0, end < 0 ? raw.length : end));
      if (!NAMES[id] && given) name = given;
    }
    const values: number[] = [];
    for (let j = 0; j < count; j++) values.push(c.u32());
    if (version === 1 && count % 2) c.skip(4);
    out.push({ id, name, flags, values });
  }
  return out;
}

/**
 * Undoes `filters` (skipping those masked) on one stored chunk, which must come out as
 * exactly `size` bytes; `what` names the chunk in errors.
 */
export function unfilter(
  filters: Filter[],
  mask: number,
  stored: Uint8Array,
  size: number,
  what: string,
): Uint8Array {
  let data = stored;
  for (let i = filters.length - 1; i >= 0; i--) {
    if (mask & (1 << i)) continue;
    const f = filters[i];
    if (f.id === 3) {
      if (data.length < 4) bad(what, "too short for its fletcher32 checksum");
      const n = data.length - 4;
      const stored = (data[n] | (data[n + 1] << 8) | (data[n + 2] << 16) | (data[n + 3] << 24)) >>>
        0;
      const sum = fletcher32(data.subarray(0, n));
      // HDF5 1.6.0-1.6.2 wrote it byte-swapped; HDF5 itself accepts both.
      const swapped = (((sum & 0xff) << 24) | ((sum & 0xff00) << 8) | ((sum >>> 8) & 0xff00) |
        (sum >>> 24)) >>> 0;
      if (stored !== sum && stored !== swapped) bad(what, "fletcher32 checksum mismatch");
      data = data.subarray(0, n);
    } else if (f.id === 1) {
      try {
        data = inflateSync(data, { maxOutputLength: Math.max(size, 1) });
      } catch (e) {
        bad(what, `deflate: ${(e as Error).message.split("\n")[0]}`);
      }
    } else if (f.id === 2) {
      data = unshuffle(data, f.values[0] ?? 1);
    } else {
      bad(what, `${f.name} filter is not supported`);
    }
  }
  if (data.length !== size) bad(what, `${data.length} bytes after its filters, not ${size}`);
  return data;
}

function unshuffle(data: Uint8Array, es: number): Uint8Array {
  if (es <= 1) return data;
  const n = Math.floor(data.length / es);
  const out = new Uint8Array(data.length);
  for (let j = 0; j < es; j++) {
    const from = j * n;
    for (let i = 0; i < n; i++) out[i * es + j] = data[from + i];
  }
  out.set(data.subarray(n * es), n * es);
  return out;
}
