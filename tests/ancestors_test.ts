/**
 * Thin archives that refer past their parent (docs/FORMAT.md, feature bit 5): content a chain
 * dropped and brought back is found in the ancestor that still holds it, not stored again; it
 * reads back through every path (random reads, check, parallel extract, flatten, the CLI); an
 * ancestor that is gone is an error, never zeros; an entry that names an ancestor the chain does
 * not have, or that sets the byte where the format does not allow it, is refused.
 */
import { check, type EncryptOptions, extract, HexzError, inspect, open, pack } from "../mod.ts";
import { flatten } from "../core/pack/repack.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { rehash } from "./_rehash.ts";
import { assertBytesEqual, readAll, withOpen } from "./_archive.ts";
import { hexz } from "./_cli.ts";
import { entryAt, plainPages } from "./_pages.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** v1 holds A B C; v2 replaces B by B'; v3 brings B back and adds D. 64 KiB blocks. */
function generations(): Uint8Array[] {
  const v1 = pseudoRandom(3 * MiB, 61);
  const v2 = v1.slice();
  v2.set(pseudoRandom(1 * MiB, 62), 1 * MiB);
  const v3 = v1.slice();
  v3.set(pseudoRandom(256 * KiB, 63), 2 * MiB + 512 * KiB);
  return [v1, v2, v3];
}

async function packChain(
  dir: string,
  encrypt?: EncryptOptions,
): Promise<string[]> {
  const paths: string[] = [];
  const gens = generations();
  const password = encrypt ? { password: encrypt.password } : {};
  for (let i = 0; i < gens.length; i++) {
    await Deno.writeFile(`${dir}/v${i + 1}.img`, gens[i]);
    const base = i ? await open(paths[i - 1], password) : undefined;
    try {
      await pack({
        output: `${dir}/v${i + 1}.hxz`,
        disk: `${dir}/v${i + 1}.img`,
        compression: "lz4",
        base,
        basePath: i ? paths[i - 1] : undefined,
        // Children keep their base's key derivation: the password only.
        encrypt: encrypt && i ? { password: encrypt.password } : encrypt,
      });
    } finally {
      base?.close();
    }
    paths.push(`${dir}/v${i + 1}.hxz`);
  }
  return paths;
}

const FAST: EncryptOptions = {
  password: "generations",
  kdf: { name: "argon2id", memoryKiB: 256, iterations: 1, parallelism: 1 },
};

for (const encrypt of [undefined, FAST]) {
  Deno.test(`ancestors: content brought back is referred to in the grandparent, not stored again${encrypt ? " (encrypted)" : ""}`, async () => {
    const [dir, done] = await tempDir();
    try {
      const paths = await packChain(dir, encrypt);
      const gens = generations();
      const password = encrypt ? { password: encrypt.password } : {};
      const a = await open(paths[2], password);
      try {
        const s = inspect(a).streams[0];
        // A and C come from v2 (which refers to v1 for them), B from v1 directly: only D (4
        // blocks of 64 KiB) is stored.
        assertEquals([s.blocks, s.dataBlocks, s.parentBlocks], [48, 4, 44]);
        assert(a.header.features & (1 << 5), "feature bit 5");
        assert(inspect(a).features.includes("ancestors"));
        const far = [];
        for await (const b of a.blocks("disk")) if (b.entry.ancestor) far.push(b.index);
        assertEquals(far, [16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31]);
        assertBytesEqual(await readAll(a, "disk"), gens[2], "v3");
        assertBytesEqual(
          await a.read("disk", MiB + 100, 1000),
          gens[2].subarray(MiB + 100, MiB + 1100),
        );
        await check(a);
      } finally {
        a.close();
      }
      // v2 itself needs no ancestor references; v1 is not thin.
      for (const p of paths.slice(0, 2)) {
        const b = await open(p, password);
        assertEquals(b.header.features & (1 << 5), 0, p);
        b.close();
      }
      // Parallel extract (the block kernel follows the chain itself) and flatten.
      const src = await open(paths[2], password);
      try {
        await extract(src, `${dir}/out.img`, { workers: 2 });
        await flatten(src, { output: `${dir}/flat.hxz` });
      } finally {
        src.close();
      }
      assertBytesEqual(await Deno.readFile(`${dir}/out.img`), gens[2], "extracted");
      const flat = await open(`${dir}/flat.hxz`, password);
      try {
        assertEquals(flat.header.features & 0b100010, 0, "flat: not thin, no ancestors");
        assertBytesEqual(await readAll(flat, "disk"), gens[2], "flattened");
      } finally {
        flat.close();
      }
    } finally {
      await done();
    }
  });
}

Deno.test("ancestors: the CLI shows them, and a grandparent that is gone is named, never read as zeros", async () => {
  const [dir, done] = await tempDir();
  try {
    const paths = await packChain(dir);
    const i = await hexz(["inspect", paths[2]]);
    assertEquals(i.code, 0, i.err);
    assertMatch(i.out, /features: thin, compressedIndex, ancestors, inheritedHashes\n/);
    const x = await hexz(["extract", paths[2], `${dir}/cli.img`, "-q"]);
    assertEquals(x.code, 0, x.err);
    assertBytesEqual(await Deno.readFile(`${dir}/cli.img`), generations()[2], "cli extract");
    await Deno.remove(paths[0]);
    const e = await hexz(["cat", paths[2], "--offset", String(MiB), "--length", "16"]);
    assertEquals(e.code, 1);
    assertMatch(e.err, /^hexz: .*v1\.hxz.*not found/);
    assertEquals(e.err.trim().split("\n").length, 1, e.err);
  } finally {
    await done();
  }
});

Deno.test("ancestors: packing on a base whose grandparent is gone fails with one line and leaves nothing", async () => {
  const [dir, done] = await tempDir();
  try {
    const paths = await packChain(dir);
    // Out of the directory: a parent is also looked for among the archives beside its child.
    await Deno.mkdir(`${dir}/away`);
    await Deno.rename(paths[0], `${dir}/away/v1.hxz`);
    const r = await hexz(["pack", `${dir}/v3b.hxz`, "--disk", `${dir}/v3.img`, "--base", paths[1]]);
    assertEquals(r.code, 1);
    // The line names the archive whose parent is missing (v2, not the base v3 is packed on).
    assertMatch(r.err, /^hexz: parent archive .*v1\.hxz of .*v2\.hxz not found \(looked at /);
    assertMatch(r.err, /then among the archives beside it\)$/m);
    assertEquals(r.err.trim().split("\n").length, 1, r.err);
    assertEquals(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes("v3b")),
      [],
    );
  } finally {
    await done();
  }
});

// --- hostile entries: each byte changed with every checksum above it recomputed ---

Deno.test("ancestors: entries naming an ancestor where the format does not allow it are refused", async () => {
  const [dir, done] = await tempDir();
  try {
    const paths = await packChain(dir);
    // Its page of parent entries is stored compressed: stored plain here, so entries can be found.
    const good = plainPages(await Deno.readFile(paths[2]));
    // Entry 16 is a parent entry with ancestor 1, entry 0 one with ancestor 0, entry 40 data.
    assertEquals([good[entryAt(good, 16) + 16], good[entryAt(good, 16) + 20]], [3, 1]);
    assertEquals([good[entryAt(good, 0) + 16], good[entryAt(good, 0) + 20]], [3, 0]);
    assertEquals(good[entryAt(good, 40) + 16], 0);
    const cases: [string, (f: Uint8Array) => void, RegExp][] = [
      [
        "ancestor 2 of a chain of two",
        (f) => (f[entryAt(f, 16) + 20] = 2),
        /3 generations up; its chain ends after 2/,
      ],
      [
        "byte 21 of a parent entry",
        (f) => (f[entryAt(f, 16) + 21] = 1),
        /reserved field is not zero/,
      ],
      [
        "ancestor on a data entry",
        (f) => (f[entryAt(f, 40) + 20] = 1),
        /reserved field is not zero/,
      ],
      ["feature bit 5 cleared", (f) => (f[12] &= ~(1 << 5)), /reserved field is not zero/],
    ];
    for (const [what, spoil, message] of cases) {
      const f = good.slice();
      spoil(f);
      await Deno.writeFile(`${dir}/bad.hxz`, await rehash(f));
      await Deno.rename(`${dir}/bad.hxz`, `${dir}/v3x.hxz`);
      await assertRejects(() => withOpen(`${dir}/v3x.hxz`, check), HexzError, message).catch(
        (e) => {
          throw new Error(`${what}: ${e.message}`);
        },
      );
    }
    // Feature bit 5 without a parent.
    const f = good.slice();
    f[12] = 1 << 5;
    await Deno.writeFile(`${dir}/orphan.hxz`, await rehash(f));
    await assertRejects(
      () => open(`${dir}/orphan.hxz`),
      HexzError,
      /ancestor references without a parent/,
    );
  } finally {
    await done();
  }
});
