/**
 * FastCDC checked against docs/CHUNKING.md, not against our code: the gear table, the masks and
 * the cut rule are re-implemented from the page's text alone (tests/_fastcdc_spec.ts), and our
 * WebAssembly chunker and the streamed splitter that `pack --cdc` uses must cut exactly where
 * that reading of the page cuts.
 */
import { findCuts } from "../core/chunk/fastcdc_wasm.ts";
import { splitBlocks } from "../core/chunk/split.ts";
import { assert, assertEquals } from "./_assert.ts";
import { mixedBytes, Prng } from "./_prng.ts";
import { GEAR, type Params, specCuts } from "./_fastcdc_spec.ts";

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

Deno.test("FastCDC: our WebAssembly cuts where CHUNKING.md says, on random and structured data", () => {
  const rng = new Prng(0xcdc);
  for (const p of PARAMS) {
    for (const data of [rng.bytes(1 << 20), mixedBytes(rng, 2 << 20)]) {
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
  // More than the splitter's 16 MiB buffer, so it refills and carries an undecided tail.
  for (const [p, size] of [[PARAMS[0], 40 << 20], [PARAMS[2], 18 << 20]] as const) {
    const data = mixedBytes(rng, size);
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
