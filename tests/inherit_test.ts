/**
 * Parent entries that inherit their hash (docs/FORMAT.md, feature bit 6): a chain v1 -> v2 ->
 * v3 (plain, encrypted, CDC; v3 with references to its grandparent) reads back through every
 * path, and every entry a reader hands out carries the block's hash as if it were stored; the
 * index of a thin child of a 1 GiB image costs a few bytes per unchanged block; entries that
 * misuse the flag are refused with one line.
 */
import { blake3 } from "hash-wasm";
import {
  check,
  diff,
  type EncryptOptions,
  extract,
  HexzError,
  inspect,
  open,
  pack,
} from "../mod.ts";
import { flatten } from "../core/pack/repack.ts";
import { openOverlay } from "../core/overlay/overlay.ts";
import { commitOverlay } from "../core/overlay/commit.ts";
import { KIND } from "../core/format/constants.ts";
import type { Archive } from "../core/read/archive.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { assertBytesEqual, readAll } from "./_archive.ts";
import { hexz } from "./_cli.ts";
import { entryAt, plainPages } from "./_pages.ts";
import { rehash } from "./_rehash.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const INHERITED = 1 << 6;
const unhex = (s: string) => Uint8Array.from(s.match(/../g)!.map((h) => parseInt(h, 16)));

/** v1 holds A B C; v2 replaces B by B'; v3 brings B back and adds D (as ancestors_test.ts). */
function generations(): Uint8Array[] {
  const v1 = pseudoRandom(3 * MiB, 71);
  const v2 = v1.slice();
  v2.set(pseudoRandom(1 * MiB, 72), 1 * MiB);
  const v3 = v1.slice();
  v3.set(pseudoRandom(256 * KiB, 73), 2 * MiB + 512 * KiB);
  return [v1, v2, v3];
}

interface Variant {
  name: string;
  encrypt?: EncryptOptions;
  cdc?: boolean;
}

const VARIANTS: Variant[] = [
  { name: "plain" },
  {
    name: "encrypted",
    encrypt: {
      password: "inherit",
      kdf: { name: "argon2id", memoryKiB: 256, iterations: 1, parallelism: 1 },
    },
  },
  { name: "CDC", cdc: true },
];

async function packChain(dir: string, v: Variant): Promise<string[]> {
  const paths: string[] = [];
  const gens = generations();
  const password = v.encrypt ? { password: v.encrypt.password } : {};
  for (let i = 0; i < gens.length; i++) {
    await Deno.writeFile(`${dir}/v${i + 1}.img`, gens[i]);
    const base = i ? await open(paths[i - 1], password) : undefined;
    try {
      await pack({
        output: `${dir}/v${i + 1}.hxz`,
        disk: `${dir}/v${i + 1}.img`,
        compression: "lz4",
        cdc: i === 0 && v.cdc ? true : undefined,
        base,
        basePath: i ? paths[i - 1] : undefined,
        encrypt: v.encrypt && i ? { password: v.encrypt.password } : v.encrypt,
      });
    } finally {
      base?.close();
    }
    paths.push(`${dir}/v${i + 1}.hxz`);
  }
  return paths;
}

/** Every entry's hash is the (keyed) BLAKE3 of the bytes it covers, stored or inherited. */
async function assertHashes(a: Archive, content: Uint8Array, what: string): Promise<number> {
  let parents = 0;
  for await (const b of a.blocks("disk")) {
    const e = b.entry;
    const plain = unhex(await blake3(content.subarray(b.offset, b.offset + e.logicalLength)));
    const want = a.keys ? a.keys.identify(plain) : plain;
    assertBytesEqual(e.hash, want, `${what}: hash of block ${b.index}`);
    assertEquals(e.flags & 2, 0, `${what}: block ${b.index} shows no inherited flag`);
    if (e.kind === KIND.parent) parents++;
  }
  return parents;
}

for (const v of VARIANTS) {
  Deno.test(`inherited hashes: a chain v1 -> v2 -> v3 round-trips through every path (${v.name})`, async () => {
    const [dir, done] = await tempDir();
    try {
      const paths = await packChain(dir, v);
      const gens = generations();
      const password = v.encrypt ? { password: v.encrypt.password } : {};
      // v1 is not thin; v2 and v3 leave out the hash of every parent entry.
      for (let i = 0; i < 3; i++) {
        const a = await open(paths[i], password);
        try {
          assertEquals((a.header.features & INHERITED) !== 0, i > 0, `v${i + 1} feature bit 6`);
          assertEquals(inspect(a).features.includes("inheritedHashes"), i > 0);
          const parents = await assertHashes(a, gens[i], `v${i + 1}`);
          assertEquals(parents > 0, i > 0);
        } finally {
          a.close();
        }
      }
      const a = await open(paths[2], password);
      try {
        if (!v.cdc) {
          let far = 0;
          for await (const b of a.blocks("disk")) if (b.entry.ancestor) far++;
          assertEquals(far, 16, "blocks of B come from v1, past the parent");
        }
        assertBytesEqual(await readAll(a, "disk"), gens[2], "v3");
        assertBytesEqual(
          await a.read("disk", MiB + 100, 1000),
          gens[2].subarray(MiB + 100, MiB + 1100),
        );
        const r = await check(a);
        assertEquals(r.pages, a.pages.length);
        await extract(a, `${dir}/out.img`, { workers: 2 });
        await flatten(a, { output: `${dir}/flat.hxz` });
      } finally {
        a.close();
      }
      assertBytesEqual(await Deno.readFile(`${dir}/out.img`), gens[2], "parallel extract");
      const flat = await open(`${dir}/flat.hxz`, password);
      try {
        assertEquals(flat.header.features & (INHERITED | 2), 0, "flat: not thin");
        assertBytesEqual(await readAll(flat, "disk"), gens[2], "flattened");
        await assertHashes(flat, gens[2], "flat");
      } finally {
        flat.close();
      }
      // diff: v2 and v3 share the blocks whose hashes both hold (hashes checked above).
      const [a2, a3] = [await open(paths[1], password), await open(paths[2], password)];
      try {
        const set = async (x: Archive) => {
          const s = new Set<string>();
          for await (const b of x.blocks("disk")) s.add(b.entry.hash.join());
          return s;
        };
        const [s2, s3] = [await set(a2), await set(a3)];
        const d = await diff(a2, a3);
        assertEquals(d.sharedBlocks, [...s3].filter((h) => s2.has(h)).length);
        assert(d.sharedBlocks > 0 && d.changedFraction! > 0 && d.changedFraction! < 1);
      } finally {
        a2.close();
        a3.close();
      }
      // commit --thin on v3: a fourth generation, itself inheriting its hashes.
      const base = await open(paths[2], password);
      const edit = new TextEncoder().encode("generation four");
      try {
        const ov = await openOverlay(`${dir}/v3.hxo`, base, { create: true });
        await ov.write("disk", 5 * 4096, edit);
        await ov.flush();
        await commitOverlay(base, ov, {
          output: `${dir}/v4.hxz`,
          mode: "thin",
          basePath: paths[2],
          encrypt: v.encrypt ? { password: v.encrypt.password } : undefined,
        });
        ov.close();
      } finally {
        base.close();
      }
      const v4 = gens[2].slice();
      v4.set(edit, 5 * 4096);
      const a4 = await open(`${dir}/v4.hxz`, password);
      try {
        assert(a4.header.features & INHERITED, "v4 feature bit 6");
        assertBytesEqual(await readAll(a4, "disk"), v4, "v4");
        await assertHashes(a4, v4, "v4");
        await check(a4);
      } finally {
        a4.close();
      }
      // The command line: inspect names the feature, check and extract pass, ls shows the chain.
      const env: Record<string, string> | undefined = v.encrypt
        ? { HEXZ_PASSWORD: v.encrypt.password! }
        : undefined;
      const i = await hexz(["inspect", paths[2]], { env });
      assertEquals(i.code, 0, i.err);
      assertMatch(i.out, /features: (encrypted, )?thin, compressedIndex, .*inheritedHashes\n/);
      const c = await hexz(["check", `${dir}/v4.hxz`, "-q"], { env });
      assertEquals(c.code, 0, c.err);
      const x = await hexz(["extract", paths[2], `${dir}/cli.img`, "-q"], { env });
      assertEquals(x.code, 0, x.err);
      assertBytesEqual(await Deno.readFile(`${dir}/cli.img`), gens[2], "CLI extract");
      const ls = await hexz(["ls", dir, "--json"]);
      assertEquals(ls.code, 0, ls.err);
      const nodes = JSON.parse(ls.out);
      const names = JSON.stringify(nodes);
      for (const n of ["v1.hxz", "v2.hxz", "v3.hxz", "v4.hxz"]) assert(names.includes(n), n);
    } finally {
      await done();
    }
  });
}

Deno.test("inherited hashes: reads at once and a page cache too small for one page still agree", async () => {
  const [dir, done] = await tempDir();
  try {
    const paths = await packChain(dir, { name: "plain" });
    const gens = generations();
    for (const pageCacheBytes of [undefined, 1]) {
      const a = await open(paths[2], { pageCacheBytes });
      try {
        // Many reads racing for the same pages of the child, the parent and the grandparent.
        const at = Array.from({ length: 64 }, (_, k) => (k * 48 * KiB) % (3 * MiB - 4096));
        const got = await Promise.all(at.map((o) => a.read("disk", o, 4096)));
        for (let k = 0; k < at.length; k++) {
          assertBytesEqual(got[k], gens[2].subarray(at[k], at[k] + 4096), `read at ${at[k]}`);
        }
        await assertHashes(a, gens[2], `page cache ${pageCacheBytes}`);
      } finally {
        a.close();
      }
    }
  } finally {
    await done();
  }
});

Deno.test("inherited hashes: without its parent, a child's header still reads, its index does not", async () => {
  const [dir, done] = await tempDir();
  try {
    const paths = await packChain(dir, { name: "plain" });
    await Deno.rename(paths[0], `${dir}/gone.bin`);
    const i = await hexz(["inspect", paths[1]]);
    assertEquals(i.code, 0, i.err);
    assertMatch(i.out, /inheritedHashes/);
    const c = await hexz(["check", paths[1]]);
    assertEquals(c.code, 1);
    assertMatch(c.err, /^hexz: .*v1\.hxz.*not found/);
    assertEquals(c.err.trim().split("\n").length, 1, c.err);
  } finally {
    await done();
  }
});

Deno.test("inherited hashes: a thin child of a 1 GiB image with a few changes has an index of a few bytes per block", async () => {
  const [dir, done] = await tempDir();
  try {
    // 16,384 distinct 64 KiB blocks, cheap to make and to compress.
    const B = 64 * KiB;
    const f = await Deno.open(`${dir}/v1.img`, { write: true, create: true });
    const chunk = new Uint8Array(64 * B);
    for (let i = 0; i < 1024 * MiB / B; i += 64) {
      for (let k = 0; k < 64; k++) {
        const dv = new DataView(chunk.buffer, k * B, B);
        for (let o = 0; o < B; o += 512) dv.setUint32(o, i + k + 1, true);
      }
      await f.write(chunk);
    }
    for (const block of [5, 1000, 9000, 16000]) {
      await f.seek(block * B + 100, Deno.SeekMode.Start);
      await f.write(new TextEncoder().encode("changed!"));
    }
    f.close();
    await pack({ output: `${dir}/v1.hxz`, disk: `${dir}/v1.img` });
    // The same image with four blocks changed.
    const g = await Deno.open(`${dir}/v1.img`, { write: true });
    for (const block of [6, 1001, 9001, 16001]) {
      await g.seek(block * B + 100, Deno.SeekMode.Start);
      await g.write(new TextEncoder().encode("changed?"));
    }
    g.close();
    const base = await open(`${dir}/v1.hxz`);
    try {
      await pack({
        output: `${dir}/v2.hxz`,
        disk: `${dir}/v1.img`,
        base,
        basePath: base.source.name,
      });
    } finally {
      base.close();
    }
    const a = await open(`${dir}/v2.hxz`);
    try {
      const s = inspect(a).streams[0];
      assertEquals([s.blocks, s.dataBlocks, s.parentBlocks], [16384, 4, 16380]);
      const index = a.pages.reduce((n, p) => n + p.length, 0);
      // Measured: 84,141 bytes (about 5 a block); with the hashes stored, 917,760.
      assert(index < 100_000, `index of ${index} bytes`);
      assertEquals(a.pages.every((p) => p.codec === 1), true, "every page compressed");
      await check(a);
    } finally {
      a.close();
    }
  } finally {
    await done();
  }
});

Deno.test("inherited hashes: entries that misuse the flag are refused with one line", async () => {
  const [dir, done] = await tempDir();
  try {
    const paths = await packChain(dir, { name: "plain" });
    // v2: disk blocks 0..15 and 32..47 unchanged (parent entries), 16..31 new data.
    const good = plainPages(await Deno.readFile(paths[1]));
    const e = (f: Uint8Array, k: number) => entryAt(f, k);
    assertEquals([good[e(good, 0) + 16], good[e(good, 0) + 18]], [3, 2], "parent, inherited");
    assertEquals([good[e(good, 1) + 16], good[e(good, 1) + 18]], [3, 2], "parent, inherited");
    assertEquals([good[e(good, 16) + 16], good[e(good, 16) + 18]], [0, 0], "data");
    const setU32 = (f: Uint8Array, at: number, n: number) =>
      new DataView(f.buffer, f.byteOffset).setUint32(at, n, true);
    const getU32 = (f: Uint8Array, at: number) =>
      new DataView(f.buffer, f.byteOffset).getUint32(at, true);
    const cases: [string, (f: Uint8Array) => void, RegExp][] = [
      ["the flag on a data entry", (f) => (f[e(f, 16) + 18] |= 2), /only a parent block/],
      ["the flag without feature bit 6", (f) => (f[12] &= ~INHERITED), /lacks feature bit 6/],
      ["a hash with the flag", (f) => (f[e(f, 0) + 40] = 1), /inherits its hash but stores one/],
      [
        // Two neighbours trade 1 KiB: the page still covers its range, the lengths lie.
        "a length that differs from the referenced block's",
        (f) => {
          setU32(f, e(f, 0) + 12, getU32(f, e(f, 0) + 12) + 1024);
          setU32(f, e(f, 1) + 12, getU32(f, e(f, 1) + 12) - 1024);
        },
        /block it refers to holds 65536 bytes, not 66560/,
      ],
      [
        "a block the parent does not have",
        (f) => setU32(f, e(f, 0), 1000),
        /refers to disk block 1000 of .*v1\.hxz, which has 48/,
      ],
    ];
    for (const [what, spoil, message] of cases) {
      const f = good.slice();
      spoil(f);
      await Deno.writeFile(`${dir}/bad.hxz`, await rehash(f));
      for (const cmd of [["check"], ["cat", "--length", "16"]]) {
        const r = await hexz([cmd[0], `${dir}/bad.hxz`, ...cmd.slice(1)]);
        assertEquals(r.code, 1, `${what}: ${cmd[0]}: ${r.err}`);
        assertMatch(r.err, /^hexz: /, what);
        assertMatch(r.err, message, what);
        assertEquals(r.err.trim().split("\n").length, 1, `${what}: ${r.err}`);
      }
    }
    // Feature bit 6 without a parent.
    const f = good.slice();
    f[12] = INHERITED;
    await Deno.writeFile(`${dir}/orphan.hxz`, await rehash(f));
    await assertRejects(
      () => open(`${dir}/orphan.hxz`),
      HexzError,
      /inherited hashes without a parent/,
    );
  } finally {
    await done();
  }
});
