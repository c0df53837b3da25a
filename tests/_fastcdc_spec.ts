/**
 * FastCDC exactly as docs/CHUNKING.md defines it, written from that page alone (plain numbers,
 * no bit tricks, nothing imported from our code): the independent reference that our chunker
 * is tested against.
 */
import { assert } from "./_assert.ts";

// --- docs/CHUNKING.md, "Gear table" ---------------------------------------------------------

const M64 = (1n << 64n) - 1n;

function specGear(): number[] {
  const gear: number[] = [];
  let state = 0x686578_7a67656172n; // as the page writes it (ASCII "hexzgear")
  for (let b = 0; b < 256; b++) {
    state = (state + 0x9e3779b97f4a7c15n) % (1n << 64n);
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    z = z ^ (z >> 31n);
    gear.push(Number(z >> 32n)); // an unsigned 32-bit value
  }
  return gear;
}

export const GEAR = specGear();

// --- "Masks": one bits at positions 31 - floor(j * 32 / k) ------------------------------------

/** The mask, as an unsigned number: the sum of 2^position over its one bits. */
function spread(k: number): number {
  const bits = new Set<number>();
  for (let j = 0; j < k; j++) bits.add(31 - Math.floor((j * 32) / k));
  let mask = 0;
  for (const b of bits) mask += 2 ** b;
  return mask;
}

/** fp & mask == 0 (JavaScript's & works on the same 32 bits of both unsigned values). */
function clear(fp: number, mask: number): boolean {
  return (fp & mask) === 0;
}

export interface Params {
  min: number;
  avg: number;
  max: number;
}

/** The length of the chunk starting at `s`, by "Cut rule", word for word. */
function chunkLength(data: Uint8Array, s: number, p: Params): number {
  const n = data.length - s;
  if (n <= p.min) return n;
  const bits = Math.log2(p.avg);
  assert(Number.isInteger(bits), "avg must be a power of two");
  const small = spread(bits + 2);
  const large = spread(bits - 2);
  const limit = Math.min(n, p.max);
  const normal = Math.min(limit, p.avg);
  let fp = 0;
  for (let i = p.min; i < normal; i++) {
    fp = (fp * 2 + GEAR[data[s + i]]) % 2 ** 32;
    if (clear(fp, small)) return i + 1;
  }
  for (let i = normal; i < limit; i++) {
    fp = (fp * 2 + GEAR[data[s + i]]) % 2 ** 32;
    if (clear(fp, large)) return i + 1;
  }
  return limit;
}

/** End offsets of the chunks of a whole stream. */
export function specCuts(data: Uint8Array, p: Params): number[] {
  const ends: number[] = [];
  for (let s = 0; s < data.length;) {
    s += chunkLength(data, s, p);
    ends.push(s);
  }
  return ends;
}
