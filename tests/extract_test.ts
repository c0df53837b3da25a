import { extract, HexzError, open } from "../mod.ts";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { packBytes } from "./_archive.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

/** Random, zero and repeated regions, not a multiple of the block size. */
function image(n: number, seed: number): Uint8Array {
  const d = pseudoRandom(n, seed);
  d.fill(0, n / 4, n / 2);
  d.copyWithin(n / 2 + 100_000, 0, 500_000);
  return d;
}

async function extractWith(path: string, out: string, workers: number): Promise<Uint8Array> {
  const a = await open(path);
  try {
    await extract(a, out, { workers, path, force: true });
  } finally {
    a.close();
  }
  return await Deno.readFile(out);
}

Deno.test("parallel extract equals serial extract: plain, CDC + zstd, thin and dictionary archives", async () => {
  const [dir, done] = await tempDir();
  try {
    const v1 = image(9_000_001, 1);
    const v2 = v1.slice();
    v2.set(pseudoRandom(70_000, 9), 3_000_000);
    const plain = await packBytes(dir, v1);
    const cdc = await packBytes(dir, v1, { compression: "zstd", cdc: true });
    const a1 = await open(cdc);
    const thin = await packBytes(dir, v2, { base: a1, basePath: cdc });
    a1.close();
    const dict = await packBytes(dir, v1, {
      compression: "zstd",
      blockSize: 4096,
      trainDictionary: true,
    });
    for (const [p, want] of [[plain, v1], [cdc, v1], [thin, v2], [dict, v1]] as const) {
      for (const workers of [1, 3]) {
        const got = await extractWith(p, `${dir}/out`, workers);
        assertEquals(got.length, want.length);
        assert(got.every((b, i) => b === want[i]), `${p} with ${workers} workers`);
      }
    }
  } finally {
    await done();
  }
});

Deno.test("parallel extract reports a damaged block as corrupt and leaves no output", async () => {
  const [dir, done] = await tempDir();
  try {
    const p = await packBytes(dir, image(4_000_000, 2));
    const a = await open(p);
    const b = await a.block("disk", 5);
    a.close();
    const bytes = await Deno.readFile(p);
    bytes[b.entry.location + 5] ^= 0x40;
    await Deno.writeFile(p, bytes);
    const damaged = await open(p);
    try {
      await assertRejects(
        () => extract(damaged, `${dir}/out`, { workers: 2, path: p }),
        HexzError,
        /disk block 5/,
      );
    } finally {
      damaged.close();
    }
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith("out"));
    assertEquals(names, []);
  } finally {
    await done();
  }
});
