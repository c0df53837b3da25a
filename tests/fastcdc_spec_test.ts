/**
 * FastCDC checked against docs/CHUNKING.md, not against our code: the gear table, the masks and
 * the cut rule are re-implemented here from the page's text alone (plain numbers, no bit
 * tricks), and our WebAssembly chunker and the streamed splitter that `pack --cdc` uses must cut
 * exactly where this reading of the page cuts.
 */
import { findCuts } from "../core/chunk/fastcdc_wasm.ts";
import { splitBlocks } from "../core/chunk/split.ts";
import { assert, assertEquals } from "./_assert.ts";
import { Prng } from "./_prng.ts";

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

const GEAR = specGear();

// --- "Masks": one bits at positions 31 - floor(j * 32 / k) ------------------------------------

/** The mask as a list of bit positions (so no 32-bit sign questions arise). */
function spread(k: number): number[] {
  const bits: number[] = [];
  for (let j = 0; j < k; j++) bits.push(31 - Math.floor((j * 32) / k));
  return bits;
}

/** fp & mask == 0, with fp an unsigned 32-bit number and the mask a list of bit positions. */
function clear(fp: number, mask: number[]): boolean {
  return mask.every((bit) => Math.floor(fp / 2 ** bit) % 2 === 0);
}

interface Params {
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
function specCuts(data: Uint8Array, p: Params): number[] {
  const ends: number[] = [];
  for (let s = 0; s < data.length;) {
    s += chunkLength(data, s, p);
    ends.push(s);
  }
  return ends;
}

// ---------------------------------------------------------------------------------------------

Deno.test("CHUNKING.md gear table: the two values the page quotes follow from its definition", () => {
  assertEquals(GEAR[0], 0x73689e98);
  assertEquals(GEAR[255], 0x6d154029);
  assertEquals(new Set(GEAR).size, 256);
});

const PARAMS: Params[] = [
  { min: 16384, avg: 65536, max: 131072 }, // the documented defaults
  { min: 64, avg: 128, max: 256 }, // the smallest sizes the page allows
  { min: 64, avg: 256, max: 1024 },
  { min: 2048, avg: 8192, max: 65536 },
  { min: 1000, avg: 4096, max: 5001 },
  { min: 4095, avg: 4096, max: 4097 }, // min and max hug the average
  { min: 100, avg: 1 << 20, max: (1 << 20) + 1 }, // a large average
];

/** Random, zero-filled, short-period and text-like regions in random order and sizes. */
function structured(rng: Prng, n: number): Uint8Array {
  const d = new Uint8Array(n);
  for (let at = 0; at < n;) {
    const len = Math.min(n - at, 1 + rng.int(rng.bool() ? 300 : 200_000));
    const kind = rng.int(4);
    if (kind === 0) d.set(rng.bytes(len), at);
    else if (kind === 1) d.fill(0, at, at + len);
    else if (kind === 2) {
      const period = 1 + rng.int(16);
      for (let i = 0; i < len; i++) d[at + i] = (i % period) * 17;
    } else {
      const words = ["hexz ", "block ", "chunk ", "gear ", "\n", "0123 "];
      for (let i = 0; i < len;) {
        for (const c of words[rng.int(words.length)]) if (i < len) d[at + i++] = c.charCodeAt(0);
      }
    }
    at += len;
  }
  return d;
}

Deno.test("FastCDC: our WebAssembly cuts where CHUNKING.md says, on random and structured data", () => {
  const rng = new Prng(0xcdc);
  for (const p of PARAMS) {
    for (const data of [rng.bytes(1 << 20), structured(rng, 2 << 20)]) {
      const want = specCuts(data, p);
      const got = Array.from(findCuts(data, p, true));
      assertEquals(got, want, JSON.stringify(p));
      // Not a vacuous comparison: content decided some cuts, and sizes stay in bounds.
      const lengths = want.map((c, i) => c - (i ? want[i - 1] : 0));
      assert(lengths.slice(0, -1).every((l) => l > p.min && l <= p.max), JSON.stringify(p));
      if (p.max - p.min > 2) {
        assert(lengths.some((l) => l < p.max), `no content-defined cut: ${JSON.stringify(p)}`);
      }
    }
  }
});

Deno.test("FastCDC: inputs at and around min and max cut as the page says", () => {
  const rng = new Prng(7);
  for (const p of PARAMS.slice(0, 5)) {
    const sizes = [0, 1, p.min - 1, p.min, p.min + 1, p.avg - 1, p.avg, p.avg + 1, p.max - 1];
    sizes.push(p.max, p.max + 1, 2 * p.max, 2 * p.max + 1, p.max + p.min, p.max + p.min + 1);
    for (const n of sizes) {
      for (const data of [rng.bytes(n), new Uint8Array(n), new Uint8Array(n).fill(0xff)]) {
        const want = specCuts(data, p);
        assertEquals(Array.from(findCuts(data, p, true)), want, `${JSON.stringify(p)} n=${n}`);
      }
    }
    // Shorter than min: one chunk of the whole input; empty: no chunk at all.
    assertEquals(Array.from(findCuts(rng.bytes(p.min - 1), p, true)), [p.min - 1]);
    assertEquals(Array.from(findCuts(new Uint8Array(0), p, true)), []);
  }
});

Deno.test("FastCDC: the streamed splitter (what pack --cdc uses) cuts as the page says", async () => {
  const rng = new Prng(99);
  for (const p of [PARAMS[0], PARAMS[2], PARAMS[4]]) {
    const data = structured(rng, 9 << 20);
    let pos = 0;
    const piece = 1 + rng.int(3_000_000);
    const input = {
      read(into: Uint8Array) {
        const n = Math.min(into.length, data.length - pos, piece);
        if (n === 0) return Promise.resolve(null);
        into.set(data.subarray(pos, pos + n));
        pos += n;
        return Promise.resolve(n);
      },
    };
    const ends: number[] = [];
    let at = 0;
    for await (const b of splitBlocks(input, { kind: "cdc", params: p })) ends.push(at += b.length);
    assertEquals(ends, specCuts(data, p), JSON.stringify(p));
  }
});
