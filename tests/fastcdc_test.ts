import { DEFAULT_CDC, findCutsReference, validateCdcParams } from "../core/chunk/fastcdc.ts";
import { createChunker, findCuts } from "../core/chunk/fastcdc_wasm.ts";
import { cdcMasks, GEAR, spreadMask } from "../core/chunk/gear.ts";
import {
  type ChunkSpec,
  createSplitter,
  type SequentialInput,
  splitBlocks,
} from "../core/chunk/split.ts";
import { HexzError } from "../core/errors.ts";
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { pseudoRandom } from "./_tools.ts";

Deno.test("gear table is the documented splitmix64 sequence", () => {
  // docs/CHUNKING.md: the first and last entries, computed independently of gear.ts.
  assertEquals(GEAR[0] >>> 0, 0x73689e98);
  assertEquals(GEAR[255] >>> 0, 0x6d154029);
  assertEquals(new Set(GEAR).size, 256);
  assertEquals(spreadMask(16).toString(2).split("1").length - 1, 16);
  assertEquals(spreadMask(1), 0x80000000);
  assertEquals(cdcMasks(65536).small >>> 0, spreadMask(18));
});

/** Data with incompressible, repetitive and zero regions, which stress min and max cuts. */
function corpus(n: number): Uint8Array {
  const d = pseudoRandom(n, 11);
  d.fill(0, n / 4, n / 4 + 300_000);
  for (let i = n / 2; i < n / 2 + 200_000; i++) d[i] = i % 7;
  return d;
}

const PARAMS = [
  DEFAULT_CDC,
  { min: 64, avg: 256, max: 1024 },
  { min: 2048, avg: 8192, max: 65536 },
  { min: 1000, avg: 4096, max: 5001 },
  { min: 4095, avg: 4096, max: 4097 },
];

Deno.test("wasm FastCDC cuts exactly where the TypeScript reference cuts", () => {
  const d = corpus(6 << 20);
  for (const p of PARAMS) {
    for (const eof of [true, false]) {
      const want = findCutsReference(d, p, eof);
      const got = findCuts(d, p, eof);
      assertEquals(got.length, want.length, `${JSON.stringify(p)} eof=${eof}`);
      assert(got.every((v, i) => v === want[i]), `${JSON.stringify(p)} eof=${eof}`);
    }
  }
});

Deno.test("chunks respect min and max, and eof decides the tail", () => {
  const d = corpus(3 << 20);
  for (const p of PARAMS) {
    const cuts = findCuts(d, p, true);
    let prev = 0;
    for (let i = 0; i < cuts.length; i++) {
      const len = cuts[i] - prev;
      assert(len <= p.max, `chunk ${i} of ${len} > max`);
      if (i < cuts.length - 1) assert(len >= p.min, `chunk ${i} of ${len} < min`);
      prev = cuts[i];
    }
    assertEquals(prev, d.length);
    const open = findCuts(d, p, false);
    assert(open.length <= cuts.length && open.every((v, i) => v === cuts[i]));
  }
  // Zeros never match the small mask: every chunk is max-sized.
  const z = findCuts(new Uint8Array(1 << 20), DEFAULT_CDC, true);
  assertEquals(z[0], DEFAULT_CDC.max);
  // More than one batch of cut points from one call.
  const many = createChunker({ min: 64, avg: 128, max: 256 }, 4 << 20);
  many.buffer.set(pseudoRandom(4 << 20, 3));
  const all = many.cuts(4 << 20, true);
  assert(all.length > 4096 * 2, `${all.length} cuts`);
  assertEquals(all[all.length - 1], 4 << 20);
});

Deno.test("content-defined cuts resynchronise after an insertion", () => {
  const d = corpus(4 << 20);
  const edited = new Uint8Array(d.length + 100);
  edited.set(d.subarray(0, 1_000_000));
  edited.set(pseudoRandom(100, 99), 1_000_000);
  edited.set(d.subarray(1_000_000), 1_000_100);
  const a = new Set(findCuts(d, DEFAULT_CDC, true));
  const b = findCuts(edited, DEFAULT_CDC, true).map((c) => c - 100).filter((c) => c > 1_200_000);
  const shared = b.filter((c) => a.has(c)).length;
  assert(shared >= b.length - 2, `${shared} of ${b.length} cuts realigned`);
});

/** A sequential input over `d` that hands out at most `piece` bytes per read. */
function inPieces(d: Uint8Array, piece: number): SequentialInput {
  let pos = 0;
  return {
    read(into: Uint8Array) {
      const n = Math.min(into.length, d.length - pos, piece);
      if (n === 0) return Promise.resolve(null);
      into.set(d.subarray(pos, pos + n));
      pos += n;
      return Promise.resolve(n);
    },
  };
}

Deno.test("streamed chunking in pieces equals one-shot chunking", async () => {
  const d = corpus(40 << 20);
  // Awkward piece sizes, so the buffer refills at arbitrary points.
  const input = inPieces(d, 1_234_567);
  const ends: number[] = [];
  let at = 0;
  for await (const b of splitBlocks(input, { kind: "cdc", params: DEFAULT_CDC })) {
    assertEquals(b, d.subarray(at, at + b.length));
    at += b.length;
    ends.push(at);
  }
  const want = findCutsReference(d, DEFAULT_CDC, true);
  assertEquals(ends, Array.from(want));
});

Deno.test("one splitter reused over many inputs cuts each as a fresh one would", async () => {
  const from = (d: Uint8Array) => inPieces(d, 3_000_001);
  const lengths = async (blocks: AsyncIterable<Uint8Array>, d: Uint8Array) => {
    const out: number[] = [];
    let at = 0;
    for await (const b of blocks) {
      assertEquals(b, d.subarray(at, at + b.length));
      at += b.length;
      out.push(b.length);
    }
    assertEquals(at, d.length);
    return out;
  };
  // Inputs of several sizes, a larger one first so later ones meet a dirty buffer.
  const inputs = [corpus(20 << 20), new Uint8Array(0), corpus(70_000), pseudoRandom(5, 3)];
  for (
    const spec of [
      { kind: "fixed", size: 65536 },
      { kind: "cdc", params: DEFAULT_CDC },
    ] as ChunkSpec[]
  ) {
    const splitter = createSplitter(spec);
    for (const d of inputs) {
      assertEquals(
        await lengths(splitter.split(from(d)), d),
        await lengths(splitBlocks(from(d), spec), d),
      );
    }
    // One input at a time.
    const first = splitter.split(from(inputs[0]));
    await first.next();
    let refused = false;
    try {
      await splitter.split(from(inputs[2])).next();
    } catch {
      refused = true;
    }
    assert(refused, "a second split while one is running");
    await first.return(undefined);
    assertEquals((await lengths(splitter.split(from(inputs[2])), inputs[2])).length > 0, true);
  }
});

Deno.test("bad CDC parameters are usage errors", () => {
  for (
    const p of [{ min: 10, avg: 64, max: 128 }, { min: 64, avg: 64, max: 128 }, {
      min: 64,
      avg: 100,
      max: 128,
    }]
  ) {
    assertThrows(() => validateCdcParams(p), HexzError);
  }
});

Deno.test("zero runs of every length and phase cut exactly as the reference", () => {
  const d = pseudoRandom(3 << 20, 21);
  const r = pseudoRandom(4000, 22);
  let at = 0;
  for (let k = 0; at < d.length && k < 1000; k++) {
    const len = k % 5 === 0 ? 1000 + r[k] * 400 : 1 + ((r[k] << 2) | (r[k + 1] & 3)) % 300;
    d.fill(0, at, Math.min(d.length, at + len));
    at += len + 1 + r[k + 2] * 13;
  }
  for (const p of PARAMS) {
    for (const eof of [true, false]) {
      const want = findCutsReference(d, p, eof);
      const got = findCuts(d, p, eof);
      assertEquals(Array.from(got), Array.from(want), `${JSON.stringify(p)} eof=${eof}`);
    }
  }
});
