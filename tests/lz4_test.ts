import { HexzError } from "../core/errors.ts";
import {
  lz4Compress,
  lz4CompressBound,
  lz4CompressInPlace,
  lz4DecompressInto,
  lz4DecompressView,
  lz4Input,
} from "../core/codec/lz4.ts";
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";
import { frame, unframe } from "./_lz4frame.ts";

function roundTrip(src: Uint8Array, accel = 1): number {
  const c = lz4Compress(src, accel)!.slice();
  assert(c.length <= lz4CompressBound(src.length), "within the bound");
  const back = new Uint8Array(src.length);
  lz4DecompressInto(c, back);
  assertEquals(back, src);
  return c.length;
}

/** Text-like data with repeats at many distances and run lengths. */
function mixed(n: number, seed: number): Uint8Array {
  const r = pseudoRandom(n, seed);
  const out = new Uint8Array(n);
  let i = 0;
  while (i < n) {
    const kind = r[i] % 4;
    const len = Math.min(n - i, 1 + r[(i + 1) % n] * ((r[(i + 2) % n] % 8) + 1));
    if (kind === 0 || i < 16) out.set(r.subarray(i, i + len), i);
    else if (kind === 1) out.fill(r[i], i, i + len);
    else {
      const dist = 1 + ((r[(i + 3) % n] << 8 | r[(i + 4) % n]) % Math.min(i, 70000));
      for (let k = 0; k < len; k++) out[i + k] = out[i + k - dist];
    }
    i += len;
  }
  return out;
}

Deno.test("lz4 round-trips edge sizes, runs, random and mixed data at several accelerations", () => {
  for (const n of [0, 1, 4, 12, 13, 15, 16, 17, 64, 255, 256, 1000, 65535, 65536, 65537]) {
    roundTrip(pseudoRandom(n, n + 1));
    roundTrip(new Uint8Array(n));
    roundTrip(mixed(n, n + 7));
  }
  for (const accel of [1, 2, 8, 65537]) roundTrip(mixed(1 << 20, accel), accel);
  // Long runs make long length encodings (many 255 bytes) for literals and matches.
  assert(roundTrip(new Uint8Array(4 << 20)) < 20000, "zeros compress");
  assert(roundTrip(mixed(256 * 1024, 3)) < 256 * 1024, "mixed data compresses");
});

Deno.test("lz4 gives up (null) instead of overrunning a smaller output limit", () => {
  const r = pseudoRandom(65536, 9);
  assertEquals(lz4Compress(r, 1, r.length - 1), null);
  const z = new Uint8Array(65536);
  assert(lz4Compress(z, 1, 1000) !== null);
  assertEquals(lz4Compress(z, 1, 10), null);
});

Deno.test("lz4 rejects hostile blocks cleanly", () => {
  const dst = new Uint8Array(100);
  const bad: [string, number[]][] = [
    ["empty", []],
    ["literal length past input", [0x50, 1, 2]],
    ["extended literal length truncated", [0xf0, 255]],
    ["offset zero", [0x10, 65, 0, 0]],
    ["offset before start of output", [0x10, 65, 2, 0]],
    ["offset truncated", [0x10, 65, 1]],
    ["match past output end", [0x1f, 65, 1, 0, 255, 255, 255, 10]],
    ["output too short", [0x10, 65]],
  ];
  for (const [what, bytes] of bad) {
    assertThrows(
      () => lz4DecompressInto(Uint8Array.from(bytes), dst),
      HexzError,
      /malformed/,
      what,
    );
  }
  // The same faults far from both ends, where the decoder takes its shortcut for short
  // sequences (14 literals or fewer, a match of 18 or fewer): a first sequence writes 24
  // bytes (20 literals, a match of 4 at offset 1), then the sequence under test (1 literal,
  // a match of 5), then 55 literals: 85 bytes in all.
  const lead = [0xf0, 5, ...Array(20).fill(66), 1, 0];
  const tail = [0xf0, 40, ...Array(55).fill(67)];
  const seq = (lo: number, hi: number) => Uint8Array.from([...lead, 0x11, 65, lo, hi, ...tail]);
  const out = new Uint8Array(85);
  // Control: offset 25 reaches back to the first byte, which is valid.
  lz4DecompressInto(seq(25, 0), out);
  assertEquals(
    out,
    Uint8Array.from([...Array(24).fill(66), 65, ...Array(5).fill(66), ...Array(55).fill(67)]),
  );
  for (const [what, lo, hi] of [["zero", 0, 0], ["26", 26, 0], ["60000", 0x60, 0xea]] as const) {
    assertThrows(
      () => lz4DecompressInto(seq(lo, hi), out),
      HexzError,
      /malformed/,
      `offset ${what}`,
    );
  }
  // Producing more than the declared size is refused too.
  const c = lz4Compress(new Uint8Array(200))!.slice();
  assertThrows(() => lz4DecompressInto(c, new Uint8Array(199)), HexzError, /malformed/);
  assertThrows(() => lz4DecompressInto(c, new Uint8Array(201)), HexzError, /malformed/);
});

Deno.test("lz4 decoder survives random mutations and truncations (seeded)", () => {
  const src = mixed(65536, 42);
  const good = lz4Compress(src)!.slice();
  const dst = new Uint8Array(src.length);
  const r = pseudoRandom(4 * 3000, 77);
  let rejected = 0;
  for (let t = 0; t < 3000; t++) {
    const m = good.slice(0, t % 7 === 0 ? r[4 * t] * 97 % good.length : good.length);
    for (let k = 0; k < 1 + (r[4 * t + 1] & 3); k++) {
      m[((r[4 * t + 2] << 8) | r[4 * t + 3]) * (k + 1) % m.length] ^= 1 << k;
    }
    try {
      lz4DecompressInto(m, dst);
    } catch (e) {
      assert(e instanceof HexzError, `unexpected ${e}`);
      rejected++;
    }
  }
  assert(rejected > 100, `most mutations are detected structurally (${rejected})`);
  // The module still works after all that.
  roundTrip(src);
});

Deno.test(needs(["lz4"], {
  name: "lz4 blocks decode with the lz4 tool, and lz4 -1 blocks decode with ours",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const src = mixed(300_000, 5);
      const blocks = [];
      for (let o = 0; o < src.length; o += 65536) {
        const b = src.subarray(o, Math.min(src.length, o + 65536));
        blocks.push({ data: lz4Compress(b)!.slice(), compressed: true });
      }
      await Deno.writeFile(`${dir}/ours.lz4`, frame(blocks));
      const d = await new Deno.Command("lz4", { args: ["-d", "-c", `${dir}/ours.lz4`] }).output();
      assertEquals(d.code, 0, new TextDecoder().decode(d.stderr));
      assertEquals(d.stdout, src);

      await Deno.writeFile(`${dir}/src`, src);
      const c = await new Deno.Command("lz4", {
        args: ["-1", "-B4", "-c", "-q", `${dir}/src`],
      }).output();
      assertEquals(c.code, 0);
      const theirs = unframe(c.stdout);
      const back = new Uint8Array(src.length);
      let at = 0;
      for (const b of theirs) {
        const n = Math.min(65536, src.length - at);
        if (b.compressed) lz4DecompressInto(b.data, back.subarray(at, at + n));
        else back.set(b.data, at);
        at += n;
      }
      assertEquals(back, src);
      // Same ratio as lz4 -1: our compressed size is within 1% of theirs.
      const ours = blocks.reduce((s, b) => s + b.data.length, 0);
      const ref = theirs.reduce((s, b) => s + b.data.length, 0);
      assert(Math.abs(ours - ref) <= ref / 100, `ours ${ours} vs lz4 -1 ${ref}`);
    } finally {
      await done();
    }
  },
}));

Deno.test("lz4 in-place compression and view decompression equal the copying calls", () => {
  for (const n of [0, 13, 4096, 65536]) {
    const src = mixed(n, n + 3);
    const copied = lz4Compress(src)!.slice();
    lz4Input(n).set(src);
    const inPlace = lz4CompressInPlace(n)!.slice();
    assertEquals(inPlace, copied, `length ${n}`);
    assertEquals(lz4DecompressView(copied, n).slice(), src);
  }
  assertThrows(() => lz4DecompressView(Uint8Array.from([0x10, 65, 0, 0]), 5), HexzError);
});
