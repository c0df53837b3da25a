import { assert, assertEquals, assertRejects } from "./_assert.ts";
import {
  build,
  type ByteSource,
  check,
  diff,
  extract,
  HexzError,
  inspect,
  memorySource,
  open,
  openArchive,
  pack,
} from "../mod.ts";
import { assertBytesEqual, packBytes, readAll, withOpen } from "./_archive.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

const K = 1024;

function sparse(n: number, seed: number): Uint8Array {
  // Islands of random data in a sea of zeros, like a freshly installed disk image.
  const out = new Uint8Array(n);
  const r = pseudoRandom(n, seed);
  for (let pos = 0; pos < n; pos += 256 * K) {
    out.set(r.subarray(pos, Math.min(n, pos + 40 * K)), pos);
  }
  return out;
}

const CASES: [string, () => Uint8Array][] = [
  ["empty", () => new Uint8Array(0)],
  ["one byte", () => new Uint8Array([42])],
  ["block size - 1", () => pseudoRandom(64 * K - 1, 2)],
  ["block size", () => pseudoRandom(64 * K, 3)],
  ["block size + 1", () => pseudoRandom(64 * K + 1, 4)],
  ["all zeros", () => new Uint8Array(1024 * K)],
  ["random", () => pseudoRandom(700 * K + 13, 5)],
  ["sparse", () => sparse(3 * 1024 * K + 77, 6)],
  ["text", () => new TextEncoder().encode("hexz line of text\n".repeat(40000))],
];

for (const compression of ["none", "lz4", "zstd"] as const) {
  for (const cdc of [false, true]) {
    Deno.test(`pack and read round-trip every edge case (${compression}, ${cdc ? "cdc" : "fixed"})`, async () => {
      const [dir, done] = await tempDir();
      try {
        for (const [name, make] of CASES) {
          const data = make();
          const path = await packBytes(dir, data, { compression, cdc });
          await withOpen(path, async (a) => {
            assertEquals(a.size("disk"), data.length, name);
            assertBytesEqual(await readAll(a, "disk"), data, `${name} (${compression})`);
          });
        }
      } finally {
        await done();
      }
    });
  }
}

Deno.test("pack stores both streams at once and reads each back", async () => {
  const [dir, done] = await tempDir();
  try {
    const disk = sparse(2 * 1024 * K, 7);
    const mem = pseudoRandom(300 * K + 5, 8);
    const path = await packBytes(dir, disk, { compression: "zstd" }, mem);
    await withOpen(path, async (a) => {
      assertBytesEqual(await readAll(a, "disk"), disk, "disk");
      assertBytesEqual(await readAll(a, "memory"), mem, "memory");
      const r = inspect(a);
      assertEquals(r.streams[0].logicalSize, disk.length);
      assertEquals(r.streams[1].logicalSize, mem.length);
    });
  } finally {
    await done();
  }
});

Deno.test("Archive.read serves random ranges across block and page boundaries", async () => {
  const [dir, done] = await tempDir();
  try {
    // 1 KiB blocks and > 4096 blocks: several index pages.
    const data = sparse(5 * 1024 * K + 333, 9);
    const path = await packBytes(dir, data, { blockSize: 1024, compression: "lz4" });
    await withOpen(path, async (a) => {
      assert(a.header.streams[0].pageCount >= 2, "expected several index pages");
      const rnd = pseudoRandom(4000, 10);
      for (let i = 0; i < 300; i++) {
        const off = ((rnd[i] << 16) | (rnd[i + 1] << 8) | rnd[i + 2]) % data.length;
        const len = Math.min(data.length - off, ((rnd[i + 3] << 8) | rnd[i + 4]) * 3);
        assertBytesEqual(
          await a.read("disk", off, len),
          data.subarray(off, off + len),
          `read ${off}+${len}`,
        );
      }
      // A range crossing a page boundary exactly.
      const p1 = a.pages[1].firstOffset;
      assertBytesEqual(await a.read("disk", p1 - 10, 20), data.subarray(p1 - 10, p1 + 10));
      await assertRejects(() => a.read("disk", data.length - 1, 2), HexzError);
      await assertRejects(() => a.read("disk", -1, 1), HexzError);
    });
  } finally {
    await done();
  }
});

Deno.test("pack detects zero blocks and stores duplicate blocks once", async () => {
  const [dir, done] = await tempDir();
  try {
    const blk = pseudoRandom(64 * K, 11);
    const data = new Uint8Array(10 * 64 * K);
    for (const i of [0, 3, 7]) data.set(blk, i * 64 * K); // 3 copies, 7 zero blocks
    const path = await packBytes(dir, data, { compression: "none" });
    await withOpen(path, async (a) => {
      const s = inspect(a).streams[0];
      assertEquals(s.blocks, 10);
      assertEquals(s.zeroBlocks, 7);
      assertEquals(s.dedupBlocks, 2);
      assertEquals(s.dataBlocks, 1);
      assertEquals(s.storedBytes, 64 * K);
      assertBytesEqual(await readAll(a, "disk"), data);
    });
  } finally {
    await done();
  }
});

Deno.test("CDC chunks survive an insertion near the start; fixed blocks do not", async () => {
  const [dir, done] = await tempDir();
  try {
    const orig = pseudoRandom(4 * 1024 * K, 12);
    const shifted = new Uint8Array(orig.length + 7);
    shifted.set(orig.subarray(0, 1000));
    shifted.set([1, 2, 3, 4, 5, 6, 7], 1000);
    shifted.set(orig.subarray(1000), 1007);
    for (const cdc of [true, false]) {
      // Both versions in one archive: disk = original, memory = shifted copy.
      const path = await packBytes(dir, orig, { cdc, compression: "none" }, shifted);
      await withOpen(path, async (a) => {
        const mem = inspect(a).streams[1];
        const shared = mem.dedupBlocks / mem.blocks;
        if (cdc) assert(shared > 0.8, `CDC: only ${(shared * 100).toFixed(0)}% of chunks dedup`);
        else assert(shared < 0.05, `fixed: ${(shared * 100).toFixed(0)}% dedup, expected none`);
        assertBytesEqual(await readAll(a, "memory"), shifted);
      });
    }
  } finally {
    await done();
  }
});

Deno.test("library misuse: clear HexzErrors, and a block's bytes cannot be changed through readBlock", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const data = pseudoRandom(300_000, 91);
    await Deno.writeFile(`${dir}/img`, data);
    await pack({ output: `${dir}/a.hxz`, disk: `${dir}/img` });
    const a = keep(await open(`${dir}/a.hxz`));
    const before = await a.read("disk", 65536, 64);
    (await a.readBlock("disk", 1)).fill(0); // the caller's copy, not the cache's
    assertEquals(await a.read("disk", 65536, 64), before);
    await check(a);
    for (const bad of [0.5, 2, -1]) {
      await assertRejects(() => a.read(bad, 0, 1), HexzError, /unknown stream/);
    }
    a.close();
    await assertRejects(() => a.read("disk", 0, 1), HexzError, /a\.hxz: the archive is closed/);
    await assertRejects(() => a.readBlock("disk", 0), HexzError, /the archive is closed/);
    const o = { output: `${dir}/b.hxz`, disk: `${dir}/img` };
    // deno-lint-ignore no-explicit-any
    const cases: [any, RegExp][] = [
      [{ ...o, compression: "brotli" }, /unknown compression 'brotli'/],
      [{ ...o, compression: "LZ4" }, /unknown compression 'LZ4'/],
      [{ ...o, metadata: 1n }, /metadata cannot be stored as JSON/],
      [{ ...o, createdAtMs: NaN }, /createdAtMs must be a time/],
      [{ ...o, uuid: new Uint8Array(3) }, /uuid must be 16 bytes, got 3/],
    ];
    for (const [opts, re] of cases) await assertRejects(() => pack(opts), HexzError, re);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["a.hxz", "img"]);
  } finally {
    await done();
  }
});

Deno.test("library misuse: values of the wrong type are usage errors naming the call", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    await Deno.writeFile(`${dir}/img`, pseudoRandom(100_000, 92));
    await pack({ output: `${dir}/a.hxz`, disk: `${dir}/img` });
    const a = keep(await open(`${dir}/a.hxz`));
    const o = { output: `${dir}/b.hxz`, disk: `${dir}/img` };
    const source = /a path, a URL or a ByteSource/;
    const cases: [() => unknown, RegExp][] = [
      [() => open(123 as never), /^open: expected .*, got the number 123$/],
      [() => open(undefined as never), /^open: expected .*, got undefined$/],
      [() => open({} as never), /^open: expected a path, a URL or a ByteSource .*, got an object$/],
      [() => open(`${dir}/a.hxz`, 5 as never), /^open: options: expected an options object/],
      [() => openArchive(null as never), source],
      [
        () => inspect(undefined as never),
        /^inspect: expected an Archive \(from open\), got undefined$/,
      ],
      [() => inspect({} as never), /^inspect: expected an Archive/],
      [() => check(undefined as never), /^check: expected an Archive/],
      [() => extract(a, 7 as never), /^extract: output: expected a path, got the number 7$/],
      [
        () => diff(a, "b.hxz" as never),
        /^diff: second archive: expected an Archive .*, got the string "b\.hxz"$/,
      ],
      [() => pack({ ...o, base: {} } as never), /^pack: base: expected an Archive \(from open\)/],
      [() => pack(undefined as never), /^pack: expected an options object, got undefined$/],
      [() => pack({ disk: o.disk } as never), /^pack: output: expected a path, got undefined$/],
      [() => pack({ ...o, disk: 1 } as never), /^pack: disk: expected a string, got the number 1$/],
      [() => build(null as never), /^build: expected an options object, got null$/],
      [() => build({ output: o.output } as never), /^build: source: expected a directory/],
      [() => memorySource("abc" as never), /^memorySource: expected a Uint8Array/],
    ];
    for (const [call, re] of cases) {
      let e: unknown = null;
      try {
        await call();
      } catch (err) {
        e = err;
      }
      assert(e instanceof HexzError, `${call}: ${e}`);
      assertEquals(
        [(e as HexzError).code, re.test((e as HexzError).message)],
        ["usage", true],
        `${(e as Error).message} !~ ${re}`,
      );
    }
    a.close();
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["a.hxz", "img"]);
  } finally {
    await done();
  }
});

Deno.test("a ByteSource that returns short reads is reported as such, not as bad magic", async () => {
  const [dir, done] = await tempDir();
  try {
    await Deno.writeFile(`${dir}/img`, pseudoRandom(300_000, 93));
    await pack({ output: `${dir}/a.hxz`, disk: `${dir}/img` });
    const bytes = await Deno.readFile(`${dir}/a.hxz`);
    const short = (cut: (length: number) => number): ByteSource => ({
      size: bytes.length,
      name: "short.hxz",
      read: (offset, length) => Promise.resolve(bytes.slice(offset, offset + cut(length))),
      close() {},
    });
    let e = await assertRejects(() => open(short((n) => n - 1)), HexzError);
    assertEquals((e as HexzError).code, "io");
    assertEquals(e.message, "short.hxz: short read: 4095 of 4096 bytes at offset 0");
    // Short only for reads of blocks (larger than the header and index here): the archive opens,
    // its reads fail the same way.
    const a = await open(short((n) => (n > 4096 ? n - 1 : n)));
    try {
      e = await assertRejects(() => a.read("disk", 0, 300_000), HexzError, /short read: /);
      assertEquals((e as HexzError).code, "io");
    } finally {
      a.close();
    }
    const none: ByteSource = {
      ...short((n) => n),
      read: () => Promise.resolve(undefined as never),
    };
    await assertRejects(
      () => open(none),
      HexzError,
      /^short\.hxz: read of 4096 bytes at offset 0 returned undefined$/,
    );
  } finally {
    await done();
  }
});

Deno.test("reads under way when an archive is closed fail with its own closed error", async () => {
  const [dir, done] = await tempDir();
  try {
    const data = pseudoRandom(1 << 20, 94);
    await Deno.writeFile(`${dir}/img`, data);
    await pack({ output: `${dir}/a.hxz`, disk: `${dir}/img`, compression: "zstd" });
    for (const how of ["file", "memory"]) {
      const a = how === "file"
        ? await open(`${dir}/a.hxz`)
        : await open(memorySource(await Deno.readFile(`${dir}/a.hxz`), `${dir}/a.hxz`));
      const pending = [
        a.read("disk", 0, data.length),
        a.readBlock("disk", 3),
        check(a),
        a.read("disk", 500_000, 10),
      ];
      a.close();
      for (const p of pending) {
        const e = await assertRejects(() => p, HexzError);
        assertEquals(e.message, `${dir}/a.hxz: the archive is closed`, how);
      }
    }
  } finally {
    await done();
  }
});
