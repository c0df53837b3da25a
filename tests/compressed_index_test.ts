/**
 * Compressed index pages (docs/FORMAT.md, feature bit 4): pages of zero runs are stored
 * LZ4-compressed, pages of data blocks are not; both read back, encrypted too; a compressed page
 * that lies (bad LZ4 under a valid checksum, a codec the format does not have, the feature bit
 * cleared) is refused with one line, never misread. Checksums above a changed byte are recomputed
 * with hash-wasm's BLAKE3, so only the rule under test can refuse it.
 */
import { check, type EncryptOptions, HexzError, inspect, open } from "../mod.ts";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { rehash, u32, u64 } from "./_rehash.ts";
import { assertBytesEqual, packBytes, readAll, withOpen } from "./_archive.ts";
import { hexz } from "./_cli.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const FAST: EncryptOptions = {
  password: "correct horse",
  kdf: { name: "argon2id", memoryKiB: 256, iterations: 1, parallelism: 1 },
};

/** 16 MiB in 4 KiB blocks: a few data blocks, the rest zero runs (a sparse disk). */
function sparseDisk(): Uint8Array {
  const d = new Uint8Array(16 * MiB);
  for (const at of [0, 3 * MiB + 4 * KiB, 9 * MiB, 16 * MiB - 4 * KiB]) {
    d.set(pseudoRandom(4 * KiB, at), at);
  }
  return d;
}

async function refused(path: string, message: RegExp) {
  await assertRejects(() => withOpen(path, check), HexzError, message);
}

Deno.test("compressed index: pages of zero runs are stored compressed and read back, plain and encrypted", async () => {
  const [dir, done] = await tempDir();
  try {
    const disk = sparseDisk();
    for (const enc of [null, FAST]) {
      const path = await packBytes(dir, disk, { blockSize: 4 * KiB, encrypt: enc ?? undefined });
      const a = await open(path, enc ? { password: enc.password } : {});
      try {
        // 4096 blocks: one full page, of which four entries are data.
        assertEquals(a.pages.map((p) => [p.count, p.codec]), [[4096, 1]]);
        assert(a.pages[0].length < 4096 * 56 / 10, `page of ${a.pages[0].length} bytes`);
        assert(inspect(a).features.includes("compressedIndex"));
        assertEquals(inspect(a).streams[0].indexBytes, a.pages[0].length);
        assertBytesEqual(await readAll(a, "disk"), disk, "disk");
        assertEquals(
          await a.read("disk", 9 * MiB + 100, 8),
          disk.subarray(9 * MiB + 100, 9 * MiB + 108),
        );
        await check(a);
      } finally {
        a.close();
      }
      // The whole file: index and all, far below the 224 KiB the plain page would take.
      assert((await Deno.stat(path)).size < 4096 + 5 * 4 * KiB + 2 * KiB + (enc ? 1024 : 0));
    }
  } finally {
    await done();
  }
});

Deno.test("compressed index: pages of data blocks stay plain, and the archive needs no new feature", async () => {
  const [dir, done] = await tempDir();
  try {
    const disk = pseudoRandom(2 * MiB, 7);
    const path = await packBytes(dir, disk, { blockSize: 1 * KiB, compression: "none" });
    const a = await open(path);
    try {
      assertEquals(a.pages.map((p) => p.codec), [0]);
      assertEquals(a.pages[0].length, 32 + 2048 * 56 + 32);
      assertEquals(inspect(a).streams[0].indexBytes, 32 + 2048 * 56 + 32);
      assertEquals(a.header.features, 0);
      assertBytesEqual(await readAll(a, "disk"), disk, "disk");
    } finally {
      a.close();
    }
  } finally {
    await done();
  }
});

Deno.test("compressed index: a lying compressed page is refused with one line", async () => {
  const [dir, done] = await tempDir();
  try {
    const path = await packBytes(dir, sparseDisk(), { blockSize: 4 * KiB });
    const good = await Deno.readFile(path);
    const masterAt = u64(good, 80);
    const record = masterAt + 16;
    const pageAt = u64(good, record + 24), pageLen = u32(good, record + 32);
    const cases: [string, (f: Uint8Array) => void, RegExp][] = [
      // LZ4 that decodes to fewer bytes than 4096 entries: the last literal run cut short.
      [
        "short entries",
        (f) => f.copyWithin(pageAt + 32 + 3, pageAt + 32 + 4, pageAt + pageLen - 32),
        /compressed entries are malformed/,
      ],
      // A match offset pointing before the start of the output.
      ["bad offset", (f) => {
        const body = f.subarray(pageAt + 32, pageAt + pageLen - 32);
        body.fill(0);
        body[0] = 0x1f; // one literal, then a match of at least 19 bytes
        body[2] = 0xff;
        body[3] = 0x7f; // offset 32767 > bytes decoded so far
      }, /compressed entries are malformed/],
      ["unknown codec", (f) => (f[record + 1] = 2), /unknown page codec 2/],
      ["feature bit cleared", (f) => (f[12] &= ~(1 << 4)), /page length disagrees/],
    ];
    for (const [what, spoil, message] of cases) {
      const f = good.slice();
      spoil(f);
      await Deno.writeFile(`${dir}/bad.hxz`, await rehash(f));
      await refused(`${dir}/bad.hxz`, message).catch((e) => {
        throw new Error(`${what}: ${e.message}`);
      });
      const r = await hexz(["check", `${dir}/bad.hxz`]);
      assertEquals(r.code, 1, what);
      assertEquals(r.err.trim().split("\n").length, 1, `${what}: ${r.err}`);
    }
  } finally {
    await done();
  }
});

Deno.test("compressed index: a sparse 8 GiB disk packs into a small archive that extracts with its holes", async () => {
  const [dir, done] = await tempDir();
  try {
    const img = `${dir}/big.img`;
    const f = await Deno.open(img, { write: true, create: true });
    await f.truncate(8 * 1024 * MiB);
    await f.seek(5 * 1024 * MiB + 123, Deno.SeekMode.Start);
    await f.write(new TextEncoder().encode("hello at 5 GiB"));
    f.close();
    // --allow-ffi: pack skips the holes (SEEK_DATA), as README.md says; reading 8 GiB of them
    // would only make the test slow.
    const p = await hexz(["pack", `${dir}/big.hxz`, "--disk", img, "-q"], {
      perms: ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi"],
    });
    assertEquals(p.code, 0, p.err);
    // 131,072 entries of 56 bytes would be 7 MiB of index uncompressed.
    const size = (await Deno.stat(`${dir}/big.hxz`)).size;
    assert(size < 256 * KiB, `archive of ${size} bytes`);
    const c = await hexz([
      "cat",
      `${dir}/big.hxz`,
      "--offset",
      String(5 * 1024 * MiB + 123),
      "--length",
      "14",
    ]);
    assertEquals(c.out, "hello at 5 GiB");
    const x = await hexz(["extract", `${dir}/big.hxz`, `${dir}/out.img`, "-q"]);
    assertEquals(x.code, 0, x.err);
    const st = await Deno.stat(`${dir}/out.img`);
    assertEquals(st.size, 8 * 1024 * MiB);
    assert(st.blocks !== null && st.blocks * 512 < 1 * MiB, "the zero runs are holes");
  } finally {
    await done();
  }
});
