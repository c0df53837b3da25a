import { HexzError } from "../core/errors.ts";
import { zstdCompress, zstdDecompressInto } from "../core/codec/zstd.ts";
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

Deno.test({
  name: "zstd blocks decode with the zstd tool",
  ...needs("zstd"),
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
});
