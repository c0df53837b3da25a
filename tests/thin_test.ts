import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { check, HexzError, inspect, open, pack } from "../mod.ts";
import { flatten } from "../core/pack/repack.ts";
import { lineage } from "../core/history/lineage.ts";
import { assertBytesEqual, readAll } from "./_archive.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";
import { hexz } from "./_cli.ts";

const MiB = 1024 * 1024;

/** Three generations of a disk: v2 and v3 each change a few regions of the one before. */
function generations(): Uint8Array[] {
  const v1 = new Uint8Array(8 * MiB);
  v1.set(pseudoRandom(5 * MiB, 41), 0);
  const v2 = v1.slice();
  v2.set(pseudoRandom(300 * 1024, 42), 1 * MiB); // rewrite
  v2.set(pseudoRandom(1 * MiB, 43), 6 * MiB); // new data in empty space
  const v3 = v2.slice();
  v3.set(pseudoRandom(200 * 1024, 44), 3 * MiB + 12345);
  return [v1, v2, v3];
}

async function packChain(dir: string, cdc: boolean): Promise<string[]> {
  const paths: string[] = [];
  const gens = generations();
  for (let i = 0; i < gens.length; i++) {
    await Deno.writeFile(`${dir}/v${i + 1}.img`, gens[i]);
    const base = i ? await open(paths[i - 1]) : undefined;
    try {
      await pack({
        output: `${dir}/v${i + 1}.hxz`,
        disk: `${dir}/v${i + 1}.img`,
        compression: "zstd",
        cdc,
        base,
        basePath: i ? paths[i - 1] : undefined,
      });
    } finally {
      base?.close();
    }
    paths.push(`${dir}/v${i + 1}.hxz`);
  }
  return paths;
}

for (const cdc of [false, true]) {
  Deno.test(`thin archives: a chain of three generations round-trips (${cdc ? "cdc" : "fixed"})`, async () => {
    const [dir, done] = await tempDir();
    try {
      const paths = await packChain(dir, cdc);
      const gens = generations();
      const sizes = await Promise.all(paths.map(async (p) => (await Deno.stat(p)).size));
      // Each child stores far less than a full copy.
      assert(sizes[1] < sizes[0] / 2 && sizes[2] < sizes[0] / 2, `sizes ${sizes}`);
      for (let i = 0; i < 3; i++) {
        const a = await open(paths[i]);
        try {
          assertBytesEqual(await readAll(a, "disk"), gens[i], `v${i + 1}`);
          await check(a);
          const s = inspect(a).streams[0];
          if (i) {
            assert(
              s.parentBlocks > 0 && s.parentBytes > 4 * MiB,
              `v${i + 1} parent bytes ${s.parentBytes}`,
            );
            assertEquals(inspect(a).parent?.path, paths[i - 1]);
          }
        } finally {
          a.close();
        }
      }
    } finally {
      await done();
    }
  });
}

Deno.test("thin archives: a moved parent is found beside the child, a missing one is named", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const paths = await packChain(dir, false);
    await Deno.mkdir(`${dir}/moved`);
    // Move the whole chain: parents are found beside their children by name.
    for (const p of paths) await Deno.rename(p, p.replace(dir, `${dir}/moved`));
    const a = keep(await open(`${dir}/moved/v3.hxz`));
    assertBytesEqual(await readAll(a, "disk"), generations()[2]);
    a.close();
    await Deno.remove(`${dir}/moved/v1.hxz`);
    // Found missing on open, through the chain (v3 -> v2 -> v1)...
    const e = await assertRejects(() => open(`${dir}/moved/v3.hxz`), HexzError);
    assertMatch(e.message, /parent archive .*v1\.hxz of .*moved\/v2\.hxz not found/);
    assertEquals((e as HexzError).code, "parent");
    // ...or, when opened lazily, on the first read that needs it.
    const b = await open(`${dir}/moved/v3.hxz`, { lazyParents: true });
    try {
      await assertRejects(() => readAll(b, "disk"), HexzError, /not found/);
    } finally {
      b.close();
    }
  } finally {
    await done();
  }
});

Deno.test("thin archives: a replaced parent is detected, never read as data", async () => {
  const [dir, done] = await tempDir();
  try {
    const paths = await packChain(dir, false);
    // Same name, different archive.
    await pack({ output: paths[0], disk: `${dir}/v1.img`, compression: "lz4", force: true });
    const e = await assertRejects(() => open(paths[1]), HexzError);
    assertMatch(e.message, /is not the parent this archive was made from/);
  } finally {
    await done();
  }
});

Deno.test("thin archives: a chain copied elsewhere finds its parent beside the child when the recorded path holds another", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    // Recorded by absolute path: the copy's child first looks at the original location.
    await Deno.writeFile(`${dir}/v1.img`, pseudoRandom(300_000, 41));
    const v2 = (await Deno.readFile(`${dir}/v1.img`)).slice();
    v2.set(pseudoRandom(5000, 42), 100_000);
    await Deno.writeFile(`${dir}/v2.img`, v2);
    await Deno.mkdir(`${dir}/ch`);
    await pack({ output: `${dir}/ch/v1.hxz`, disk: `${dir}/v1.img` });
    const base = keep(await open(`${dir}/ch/v1.hxz`));
    await pack({
      output: `${dir}/ch/v2.hxz`,
      disk: `${dir}/v2.img`,
      base,
      basePath: `${dir}/ch/v1.hxz`,
    });
    base.close();
    await Deno.mkdir(`${dir}/copy`);
    for (const n of ["v1.hxz", "v2.hxz"]) await Deno.copyFile(`${dir}/ch/${n}`, `${dir}/copy/${n}`);
    // The original parent is replaced by another archive of the same name.
    await pack({ output: `${dir}/ch/v1.hxz`, disk: `${dir}/v2.img`, force: true });
    const a = await open(`${dir}/copy/v2.hxz`);
    try {
      assertEquals(await readAll(a, "disk"), v2);
    } finally {
      a.close();
    }
    // Renamed beside its child: found by its identity (as `ls` shows it), and `ls` names the
    // recorded place that now holds another archive as replaced.
    await Deno.rename(`${dir}/copy/v1.hxz`, `${dir}/copy/renamed.hxz`);
    const b = await open(`${dir}/copy/v2.hxz`);
    try {
      assertEquals(await readAll(b, "disk"), v2);
    } finally {
      b.close();
    }
    const copy = await lineage(`${dir}/copy`);
    assertEquals(copy.nodes.find((n) => n.path.endsWith("v2.hxz"))!.parentStatus, "ok");
    const orig = await lineage(`${dir}/ch`);
    const child = orig.nodes.find((n) => n.path.endsWith("v2.hxz"))!;
    assertEquals([child.parentStatus, child.parentPath], ["replaced", `${dir}/ch/v1.hxz`]);
  } finally {
    await done();
  }
});

Deno.test("flatten makes a self-contained copy of a thin archive", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const paths = await packChain(dir, true);
    const a = keep(await open(paths[2]));
    await flatten(a, { output: `${dir}/flat.hxz`, compression: "zstd" });
    a.close();
    for (const p of paths) await Deno.remove(p);
    const f = await open(`${dir}/flat.hxz`);
    try {
      assertEquals(f.header.parent, null);
      assertEquals(inspect(f).chunking.mode, "fastcdc");
      assertBytesEqual(await readAll(f, "disk"), generations()[2]);
    } finally {
      f.close();
    }
  } finally {
    await done();
  }
});

Deno.test("a thin archive is chunked like its base: other chunking asked for is refused", async () => {
  const [dir, done] = await tempDir();
  try {
    await Deno.writeFile(`${dir}/v1.img`, pseudoRandom(1 << 20, 41));
    await pack({ output: `${dir}/v1.hxz`, disk: `${dir}/v1.img`, blockSize: 16 * 1024 });
    const base = await open(`${dir}/v1.hxz`);
    try {
      const thin = (o: object) =>
        pack({ output: `${dir}/v2.hxz`, disk: `${dir}/v1.img`, base, force: true, ...o });
      // Nothing asked, or what the base has: fine.
      await thin({});
      await thin({ blockSize: 16 * 1024 });
      for (const o of [{ blockSize: 64 * 1024 }, { cdc: true }]) {
        const e = await assertRejects(() => thin(o), HexzError);
        assertEquals((e as HexzError).code, "usage");
        assertMatch(e.message, /chunked like its base \(fixed 16 KiB blocks\)/);
      }
    } finally {
      base.close();
    }
    // The command line: build's profile chunking gives way to the base's; an explicit size does not.
    await Deno.mkdir(`${dir}/src`);
    await Deno.writeFile(`${dir}/src/f.bin`, pseudoRandom(300_000, 42));
    assertEquals(
      (await hexz(["build", `${dir}/src`, `${dir}/t1.hxz`, "--profile", "ml", "-q"])).code,
      0,
    );
    const ok = await hexz([
      "build",
      `${dir}/src`,
      `${dir}/t2.hxz`,
      "--base",
      `${dir}/t1.hxz`,
      "-q",
    ]);
    assertEquals(ok.code, 0, ok.err);
    const bad = await hexz([
      "build",
      `${dir}/src`,
      `${dir}/t3.hxz`,
      "--base",
      `${dir}/t1.hxz`,
      "--block-size",
      "64K",
    ]);
    assertEquals(bad.code, 2);
    assertMatch(
      bad.err,
      /^hexz: a thin archive is chunked like its base \(fixed 256 KiB blocks\), not fixed 64 KiB blocks/,
    );
    const p = await hexz([
      "pack",
      `${dir}/p.hxz`,
      "--disk",
      `${dir}/v1.img`,
      "--base",
      `${dir}/v1.hxz`,
      "--cdc",
    ]);
    assertEquals(p.code, 2);
    assertMatch(p.err, /not FastCDC min 16 KiB, avg 64 KiB, max 128 KiB/);
  } finally {
    await done();
  }
});

Deno.test("thin archives record a relative base relative to themselves: found from any directory", async () => {
  const [dir, done] = await tempDir();
  try {
    await Deno.mkdir(`${dir}/m`);
    const img = pseudoRandom(1 << 20, 43);
    await Deno.writeFile(`${dir}/a.img`, img);
    // Packed from `dir`, naming the base as "a.hxz" and the child as "m/b.hxz".
    for (
      const args of [
        ["pack", "a.hxz", "--disk", "a.img"],
        ["pack", "m/b.hxz", "--disk", "a.img", "--base", "a.hxz"],
        ["pack", "m/c.hxz", "--disk", "a.img", "--base", "m/b.hxz"],
        ["pack", "m/d.hxz", "--disk", "a.img", "--base", `${dir}/a.hxz`],
      ]
    ) assertEquals((await hexz([...args, "-q"], { cwd: dir })).code, 0);
    const recorded = async (p: string) => await withOpenHere(p, (a) => a.header.parent?.path ?? "");
    assertEquals(await recorded(`${dir}/m/b.hxz`), "../a.hxz");
    assertEquals(await recorded(`${dir}/m/c.hxz`), "b.hxz");
    assertEquals(await recorded(`${dir}/m/d.hxz`), `${dir}/a.hxz`); // absolute stays absolute
    // Read from elsewhere (the test's own working directory, and "/"): the chain is found.
    for (const cwd of [undefined, "/"]) {
      for (const child of ["b", "c", "d"]) {
        const r = await hexz(["extract", `${dir}/m/${child}.hxz`, `${dir}/out.img`, "-f", "-q"], {
          cwd,
        });
        assertEquals(r.code, 0, `${child} from ${cwd ?? "."}: ${r.err}`);
        assertBytesEqual(await Deno.readFile(`${dir}/out.img`), img, child);
      }
    }
  } finally {
    await done();
  }
});

async function withOpenHere<T>(path: string, fn: (a: Awaited<ReturnType<typeof open>>) => T) {
  const a = await open(path, { lazyParents: true });
  try {
    return fn(a);
  } finally {
    a.close();
  }
}
