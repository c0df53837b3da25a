import { extract, HexzError, memorySource, open } from "../mod.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { equalBytes } from "../core/format/bytes.ts";
import { packBytes } from "./_archive.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

/** Random, zero and repeated regions, not a multiple of the block size. */
function image(n: number, seed: number): Uint8Array {
  const d = pseudoRandom(n, seed);
  d.fill(0, n / 4, n / 2);
  d.copyWithin(n / 2 + 100_000, 0, 500_000);
  return d;
}

/** Extracts with `workers` threads (undefined: the default); 0: from an in-memory copy (no
 * file: decoded on this thread through the archive, reading ahead). */
async function extractWith(
  path: string,
  out: string,
  workers: number | undefined,
): Promise<Uint8Array> {
  const a = workers !== 0
    ? await open(path)
    : await open(memorySource(await Deno.readFile(path), path));
  try {
    await extract(a, out, { workers: workers === 0 ? 1 : workers, force: true });
  } finally {
    a.close();
  }
  return await Deno.readFile(out);
}

/** Extracts in a process of its own and checks it closed every file; returns the error. */
async function extractAlone(archive: string, out: string, workers: number): Promise<string> {
  const script = new URL("./_extract_fds.ts", import.meta.url).pathname;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, archive, out, String(workers)],
  }).output();
  assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
  const { held, error } = JSON.parse(new TextDecoder().decode(r.stdout));
  assertEquals(held, 0, `${held} archive or output files left open`);
  return error;
}

Deno.test("parallel extract equals serial extract: lz4, zstd, raw, CDC, thin chains, dictionaries", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    // 9 MB of data: by default workers start part way through (START_WORKERS_AFTER).
    const v1 = image(12_000_001, 1);
    const v2 = v1.slice();
    v2.set(pseudoRandom(70_000, 9), 3_000_000);
    const v3 = v2.slice();
    v3.set(pseudoRandom(200_000, 10), 7_000_000);
    v3.fill(0, 100_000, 400_000);
    const plain = await packBytes(dir, v1);
    const zstd = await packBytes(dir, v1, { compression: "zstd", blockSize: 256 * 1024 });
    const raw = await packBytes(dir, v1, { compression: "none" });
    const cdc = await packBytes(dir, v1, { compression: "zstd", cdc: true });
    const a1 = keep(await open(cdc));
    const thin = await packBytes(dir, v2, { base: a1, basePath: cdc });
    a1.close();
    // A chain of two: v3 on v2 on v1, each storing only what changed.
    const a2 = keep(await open(thin));
    const thin2 = await packBytes(dir, v3, { base: a2, basePath: thin, compression: "lz4" });
    a2.close();
    const dict = await packBytes(dir, v1, {
      compression: "zstd",
      blockSize: 4096,
      trainDictionary: true,
    });
    // Compressible: little stored data, so by default workers start only after 8 MiB has
    // been decoded here, then learn of the archive file registered before.
    const t1 = new TextEncoder().encode(
      Array.from({ length: 700_000 }, (_, i) => `line ${i % 5000} of a log\n`).join(""),
    );
    assert(t1.length > 12 * 1024 * 1024, `${t1.length} bytes`);
    const t2 = t1.slice();
    t2.set(pseudoRandom(100_000, 11), 5_000_000);
    const text = await packBytes(dir, t1, { compression: "zstd" });
    const ta = keep(await open(text));
    assert(ta.header.streams[0].storedBytes < 4 * 1024 * 1024, "compressible");
    const textThin = await packBytes(dir, t2, { base: ta, basePath: text });
    ta.close();
    const cases = [
      [text, t1],
      [textThin, t2],
      [plain, v1],
      [zstd, v1],
      [raw, v1],
      [cdc, v1],
      [thin, v2],
      [thin2, v3],
      [dict, v1],
    ] as const;
    for (const [p, want] of cases) {
      for (const workers of [0, 1, 3, undefined]) {
        const got = await extractWith(p, `${dir}/out`, workers);
        assertEquals(got.length, want.length);
        assert(got.every((b, i) => b === want[i]), `${p} with ${workers} workers`);
      }
    }
    // Workers close every file they opened: after a thin chain, and after a failure.
    assertEquals(await extractAlone(thin2, `${dir}/out`, 3), "");
    assert(equalBytes(await Deno.readFile(`${dir}/out`), v3));
    // Zero regions are holes: the 2.25 MB zero quarter of v1 takes no disk space.
    await extractWith(plain, `${dir}/out`, 2);
    const st = await Deno.stat(`${dir}/out`);
    assert(st.blocks! * 512 < v1.length - 2_000_000, `${st.blocks! * 512} bytes allocated`);
  } finally {
    await done();
  }
});

Deno.test("parallel extract reports a damaged block as corrupt and leaves no output", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const p = await packBytes(dir, image(4_000_000, 2));
    const a = keep(await open(p));
    const b = await a.block("disk", 5);
    a.close();
    const bytes = await Deno.readFile(p);
    bytes[b.entry.location + 5] ^= 0x40;
    await Deno.writeFile(p, bytes);
    const damaged = await open(p);
    try {
      await assertRejects(
        () => extract(damaged, `${dir}/out`, { workers: 2 }),
        HexzError,
        new RegExp(`^${p}: disk block 5 `), // the archive is named
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

Deno.test("parallel extract of a thin archive reports a damaged parent block by its name", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const v1 = image(4_000_000, 3);
    const v2 = v1.slice();
    v2.set(pseudoRandom(10_000, 4), 0);
    const base = await packBytes(dir, v1, { compression: "zstd" });
    const a1 = keep(await open(base));
    const b = await a1.block("disk", 50);
    const thin = await packBytes(dir, v2, { base: a1, basePath: base });
    a1.close();
    const bytes = await Deno.readFile(base);
    bytes[b.entry.location + 3] ^= 0x10;
    await Deno.writeFile(base, bytes);
    const a = await open(thin);
    try {
      await assertRejects(
        () => extract(a, `${dir}/out`, { workers: 2 }),
        HexzError,
        new RegExp(`^${thin}: disk block 50 \\(offset 3276800\\) in parent .*: BLAKE3 mismatch`),
      );
    } finally {
      a.close();
    }
    // Alone (to count its descriptors), with a worker failing among three threads.
    assertMatch(await extractAlone(thin, `${dir}/out`, 3), /BLAKE3 mismatch/);
    assertEquals([...Deno.readDirSync(dir)].filter((e) => e.name.startsWith("out")), []);
  } finally {
    await done();
  }
});
