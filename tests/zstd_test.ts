import { HexzError } from "../core/errors.ts";
import {
  decompressSlow,
  zstdBound,
  zstdCompress,
  zstdCompressInto,
  zstdDecompressInto,
  zstdFastPath,
} from "../core/codec/zstd.ts";
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";

const text = new TextEncoder().encode("the quick brown fox jumps over the lazy dog. ".repeat(3000));

Deno.test("zstd round-trips at several levels and refuses wrong sizes and garbage", () => {
  for (const level of [-5, 1, 3, 19]) {
    const c = zstdCompress(text, level);
    assert(c.length < text.length / 20);
    const back = new Uint8Array(text.length);
    zstdDecompressInto(c, back);
    assertEquals(back, text);
  }
  const c = zstdCompress(text, 3);
  assertThrows(() => zstdDecompressInto(c, new Uint8Array(text.length - 1)), HexzError);
  assertThrows(() => zstdDecompressInto(c, new Uint8Array(text.length + 1)), HexzError);
  assertThrows(
    () => zstdDecompressInto(c.subarray(0, c.length - 3), new Uint8Array(text.length)),
    HexzError,
  );
  assertThrows(() => zstdDecompressInto(pseudoRandom(100), new Uint8Array(10)), HexzError);
  assertThrows(() => zstdCompress(text, 0), HexzError, /level/);
  assertThrows(() => zstdCompress(text, 23), HexzError, /level/);
});

Deno.test(needs(["zstd"], {
  name: "zstd blocks decode with the zstd tool",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      await Deno.writeFile(`${dir}/x.zst`, zstdCompress(text, 3));
      const d = await new Deno.Command("zstd", { args: ["-d", "-c", "-q", `${dir}/x.zst`] })
        .output();
      assertEquals(d.code, 0);
      assertEquals(d.stdout, text);
    } finally {
      await done();
    }
  },
}));

Deno.test("zstd: the reused native decoder and the fallback agree on good and bad frames", () => {
  // Deno 2.9.6 exposes the stream handle the fast path drives; losing it would halve speed.
  assert(zstdFastPath(), "node:zlib's zstd handle is not there: zstd decodes on the slow path");
  const sizes = [0, 1, 100, 65535, 65536, 65537, 300000];
  for (const n of sizes) {
    const data = pseudoRandom(n).map((b, i) => (i % 7 ? b & 3 : b));
    const c = zstdCompress(data, 3);
    for (const decode of [zstdDecompressInto, decompressSlow]) {
      const back = new Uint8Array(n);
      decode(c, back);
      assertEquals(back, data);
      if (n > 0) {
        // Too short, too long, truncated.
        assertThrows(() => decode(c, new Uint8Array(n - 1)), HexzError);
        assertThrows(() => decode(c, new Uint8Array(n + 1)), HexzError);
        const half = c.subarray(0, c.length >> 1);
        assertThrows(() => decode(half, new Uint8Array(n)), HexzError);
      }
      if (n > 0 && decode === zstdDecompressInto) {
        // Trailing garbage and a second frame (zstdDecompressSync ignores a short tail; the
        // block's BLAKE3 still guards that path).
        const extra = new Uint8Array(c.length + 5);
        extra.set(c);
        extra.set([1, 2, 3, 4, 5], c.length);
        assertThrows(() => decode(extra, new Uint8Array(n)), HexzError);
        const two = new Uint8Array(c.length * 2);
        two.set(c);
        two.set(c, c.length);
        assertThrows(() => decode(two, new Uint8Array(n)), HexzError);
      }
    }
    // After every failure the reused context still decodes the next frame.
    const again = new Uint8Array(n);
    zstdDecompressInto(c, again);
    assertEquals(again, data);
  }
  // Flipped bytes anywhere either fail cleanly or (when only literals changed) decode to
  // something else of the right length: never a crash, never a wrong length.
  const data = text.subarray(0, 70000);
  const c = zstdCompress(data, 3);
  for (let i = 0; i < c.length; i += 7) {
    const bad = c.slice();
    bad[i] ^= 0x5a;
    const out = new Uint8Array(data.length);
    try {
      assertEquals(zstdDecompressInto(bad, out), data.length);
    } catch (e) {
      assert(e instanceof HexzError, String(e));
    }
  }
});

Deno.test("zstdCompressInto fills exactly what fits and reports what does not", () => {
  for (const n of [1, 1000, 65536, 200_000]) {
    const data = pseudoRandom(n, n).map((b, i) => (i % 5 ? b & 7 : b));
    const frame = zstdCompress(data, 3);
    assert(frame.length <= zstdBound(n));
    // A byte more than the frame: the same frame; exactly its size or less: 0 (not shorter).
    const room = new Uint8Array(frame.length + 1);
    assertEquals(zstdCompressInto(data, room, 3), frame.length);
    assertEquals(room.subarray(0, frame.length), frame);
    assertEquals(zstdCompressInto(data, new Uint8Array(frame.length), 3), 0);
    assertEquals(zstdCompressInto(data, new Uint8Array(frame.length - 1), 3), 0);
    // The context is fine after a frame that did not fit.
    const again = new Uint8Array(zstdBound(n) + 1);
    const len = zstdCompressInto(data, again, 3);
    assertEquals(again.subarray(0, len), frame);
    const back = new Uint8Array(n);
    zstdDecompressInto(frame, back);
    assertEquals(back, data);
    // Incompressible input does not fit in n - 1 bytes.
    assertEquals(zstdCompressInto(pseudoRandom(n, 7), new Uint8Array(n), 3), 0);
  }
});

Deno.test(needs(["zstd"], {
  name: "a frame zstdCompressInto writes at level 19 decodes with the zstd tool",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      const data = text.subarray(0, 100_000);
      const out = new Uint8Array(zstdBound(data.length));
      const len = zstdCompressInto(data, out, 19);
      await Deno.writeFile(`${dir}/y.zst`, out.subarray(0, len));
      const d = await new Deno.Command("zstd", { args: ["-d", "-c", "-q", `${dir}/y.zst`] })
        .output();
      assertEquals(d.code, 0);
      assertEquals(d.stdout, data);
    } finally {
      await done();
    }
  },
}));
