import { assertEquals, assertRejects } from "./_assert.ts";
import { HexzError, pack } from "../mod.ts";
import { fixedLengths, parallelFilesPipeline, processBlock } from "../core/pack/pipeline.ts";
import { createCompressor } from "../core/codec/codec.ts";
import { assertBytesEqual } from "./_archive.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

Deno.test("parallel and serial packs are byte-identical", async () => {
  const [dir, done] = await tempDir();
  try {
    const MiB = 1024 * 1024;
    const img = new Uint8Array(12 * MiB + 777);
    img.set(pseudoRandom(3 * MiB, 81), 0);
    img.set(new TextEncoder().encode("compressible text\n".repeat(200_000)), 4 * MiB);
    img.set(img.subarray(0, MiB), 9 * MiB); // duplicates
    await Deno.writeFile(`${dir}/img`, img);
    const fixed = { uuid: new Uint8Array(16).fill(3), createdAtMs: 1_700_000_000_000 };
    for (const compression of ["lz4", "zstd", "none"] as const) {
      for (const cdc of [false, true]) {
        const outs: Uint8Array[] = [];
        for (const workers of [1, 2, 3]) {
          const out = `${dir}/${compression}-${cdc}-${workers}.hxz`;
          await pack({
            output: out,
            disk: `${dir}/img`,
            memory: `${dir}/img`,
            compression,
            cdc,
            workers,
            ...fixed,
          });
          outs.push(await Deno.readFile(out));
        }
        assertEquals(outs[0].length, outs[1].length, `${compression} cdc=${cdc}`);
        assertBytesEqual(outs[1], outs[0], `${compression} cdc=${cdc} 2 workers`);
        assertBytesEqual(outs[2], outs[0], `${compression} cdc=${cdc} 3 workers`);
      }
    }
  } finally {
    await done();
  }
});

Deno.test("the files pipeline reads many files per message and notices a file that changed", async () => {
  const [dir, done] = await tempDir();
  try {
    // Sizes around the 4 MiB range messages and the 64 KiB blocks; zeros and repeats too.
    const sizes = [1, 65_536, 100_000, 5_000_000, 70_000, 3, 4_194_304, 200_000];
    const files: { path: string; data: Uint8Array }[] = [];
    for (const [i, n] of sizes.entries()) {
      const data = i === 6 ? new Uint8Array(n) : pseudoRandom(n, 90 + (i % 3));
      const path = `${dir}/f${i}`;
      await Deno.writeFile(path, data);
      files.push({ path, data });
    }
    const B = 65_536;
    const list = () =>
      files.map(({ path, data }) => ({
        path,
        size: data.length,
        lengths: fixedLengths(data.length, B),
      }));
    const got = [];
    for await (
      const p of parallelFilesPipeline(list(), { compression: "lz4", level: 1, workers: 2 })
    ) {
      got.push(p);
    }
    // The same blocks, one by one on this thread.
    const want = [];
    const seen = new Set<string>();
    const isNew = (h: Uint8Array) => !seen.has(h.join()) && !!seen.add(h.join());
    const compressor = createCompressor("lz4", 1);
    for (const { data } of files) {
      for (let o = 0; o < data.length; o += B) {
        want.push(processBlock(data.subarray(o, Math.min(o + B, data.length)), compressor, isNew));
      }
    }
    assertEquals(got.length, want.length);
    for (let i = 0; i < want.length; i++) {
      assertEquals(got[i].length, want[i].length, `block ${i}`);
      assertEquals(got[i].zero, want[i].zero, `block ${i}`);
      if (!want[i].zero) assertEquals(got[i].hash, want[i].hash, `block ${i}`);
    }
    // A file whose size is not the one listed changed while being packed.
    const changed = list();
    changed[3].size += 1;
    await assertRejects(
      async () => {
        for await (
          const _ of parallelFilesPipeline(changed, { compression: "lz4", level: 1, workers: 2 })
        ) { /* drain */ }
      },
      HexzError,
      /f3: changed while being packed \(5000001 -> 5000000 bytes\)/,
    );
  } finally {
    await done();
  }
});
