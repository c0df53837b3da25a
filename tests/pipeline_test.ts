import { assertEquals } from "./_assert.ts";
import { pack } from "../mod.ts";
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
