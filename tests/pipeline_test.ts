import { assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { HexzError, pack } from "../mod.ts";
import {
  fixedLengths,
  parallelFilesPipeline,
  parallelPipeline,
  processBlock,
  type ProcessedBlock,
} from "../core/pack/pipeline.ts";
import { createCompressor } from "../core/codec/codec.ts";
import { type PackPool, type PackPoolOptions, startPackPool } from "../core/pack/pool.ts";
import { assertBytesEqual } from "./_archive.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

/** Every block a pipeline yields on a pool of two workers, which is closed afterwards. */
async function collect(
  codec: Pick<PackPoolOptions, "compression" | "level">,
  run: (pool: PackPool) => AsyncIterable<ProcessedBlock>,
): Promise<ProcessedBlock[]> {
  const pool = startPackPool({ ...codec, workers: 2 });
  try {
    const out: ProcessedBlock[] = [];
    for await (const p of run(pool)) out.push(p);
    return out;
  } finally {
    pool.close();
  }
}

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
        // Workers started before the pack, as the command line does; the pack closes them.
        const level = { lz4: 1, zstd: 3, none: 0 }[compression];
        const pool = startPackPool({ workers: 2, compression, level });
        await pack({
          output: `${dir}/${compression}-${cdc}-pool.hxz`,
          disk: `${dir}/img`,
          memory: `${dir}/img`,
          compression,
          cdc,
          pool,
          ...fixed,
        });
        outs.push(await Deno.readFile(`${dir}/${compression}-${cdc}-pool.hxz`));
        assertThrows(() => pool.submit({ type: "range", seq: 0, parts: [], lengths: [] }, []));
        assertEquals(outs[0].length, outs[1].length, `${compression} cdc=${cdc}`);
        assertBytesEqual(outs[1], outs[0], `${compression} cdc=${cdc} 2 workers`);
        assertBytesEqual(outs[2], outs[0], `${compression} cdc=${cdc} 3 workers`);
        assertBytesEqual(outs[3], outs[0], `${compression} cdc=${cdc} workers started first`);
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
    const lz4 = { compression: "lz4", level: 1 } as const;
    const got = await collect(lz4, (pool) => parallelFilesPipeline(list(), pool));
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
      () => collect(lz4, (pool) => parallelFilesPipeline(changed, pool)),
      HexzError,
      /f3: changed while being packed \(5000001 -> 5000000 bytes\)/,
    );
    // Written to in place (same size, another modification time).
    const touched = list().map((f) => ({ ...f, mtimeMs: Deno.statSync(f.path).mtime!.getTime() }));
    touched[4].mtimeMs -= 1000;
    await assertRejects(
      () => collect(lz4, (pool) => parallelFilesPipeline(touched, pool)),
      HexzError,
      /f4: changed while being packed \(written to\)/,
    );
  } finally {
    await done();
  }
});

Deno.test("the batch pipeline (blocks this thread holds) gives processBlock's results, every codec", async () => {
  // Random, compressible, all-zero, one-byte, larger than a batch and repeated blocks.
  const text = new TextEncoder().encode("compressible text\n".repeat(4000));
  const blocks = [
    pseudoRandom(65_536, 7),
    text,
    new Uint8Array(65_536),
    new Uint8Array([42]),
    pseudoRandom(1_500_000, 8),
    text,
    new Uint8Array(3),
    pseudoRandom(65_536, 7),
    ...Array.from({ length: 40 }, (_, i) => pseudoRandom(30_000 + i, 100 + i)),
  ];
  for (const [compression, level] of [["lz4", 1], ["lz4", 9], ["zstd", 3], ["none", 0]] as const) {
    const gen = async function* () {
      yield* blocks;
    };
    const got = await collect({ compression, level }, (pool) => parallelPipeline(gen(), pool));
    const compressor = createCompressor(compression, level);
    assertEquals(got.length, blocks.length);
    const hashes = new Set<string>();
    blocks.forEach((b, i) => {
      const want = processBlock(b, compressor);
      const what = `${compression}/${level} block ${i}`;
      assertEquals(got[i].length, b.length, what);
      assertEquals(got[i].zero, want.zero, what);
      if (want.zero) return;
      assertEquals(got[i].hash, want.hash, what);
      if (got[i].payload === undefined) {
        // Only a repeat travels without its payload, and its first copy came earlier.
        assertEquals(hashes.has(want.hash!.join()), true, `${what}: no payload`);
      } else {
        assertEquals(got[i].codec, want.codec, what);
        assertBytesEqual(got[i].payload!, want.payload!, what);
      }
      hashes.add(want.hash!.join());
    });
  }
});

Deno.test("a pack closes the workers it was given, also when it fails or runs on this thread", async () => {
  const [dir, done] = await tempDir();
  try {
    await Deno.writeFile(`${dir}/img`, pseudoRandom(300_000, 5));
    const closed = (pool: ReturnType<typeof startPackPool>) =>
      assertThrows(() => pool.submit({ type: "range", seq: 0, parts: [], lengths: [] }, []));
    // Started for another codec: refused.
    const lz4 = startPackPool({ workers: 2, compression: "lz4", level: 1 });
    await assertRejects(
      () => pack({ output: `${dir}/a.hxz`, disk: `${dir}/img`, compression: "zstd", pool: lz4 }),
      HexzError,
      /started for lz4 level 1, not zstd level 3/,
    );
    closed(lz4);
    // A missing input.
    const p2 = startPackPool({ workers: 1, compression: "lz4", level: 1 });
    await assertRejects(() => pack({ output: `${dir}/b.hxz`, disk: `${dir}/none`, pool: p2 }));
    closed(p2);
    // A dictionary pack runs here; its workers are closed unused.
    const p3 = startPackPool({ workers: 2, compression: "zstd", level: 3 });
    await pack({
      output: `${dir}/c.hxz`,
      disk: `${dir}/img`,
      compression: "zstd",
      trainDictionary: true,
      pool: p3,
    });
    closed(p3);
  } finally {
    await done();
  }
});

Deno.test("startPackPool refuses a worker count out of range as a usage error", () => {
  for (const workers of [0, -1, 1.5, 257, NaN]) {
    const e = assertThrows(
      () => startPackPool({ workers, compression: "lz4", level: 1 }),
      HexzError,
    );
    assertEquals((e as HexzError).code, "usage", String(workers));
  }
});
