import { assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { check, HexzError, open } from "../mod.ts";
import { decodeHeader, encodeHeader } from "../core/format/header.ts";
import { decodeMaster } from "../core/format/master.ts";
import { FEATURE, HEADER_SIZE, KIND } from "../core/format/constants.ts";
import { packBytes, readAll } from "./_archive.ts";
import { build } from "../core/pack/build.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

/** An archive with every kind of record: data, zero and dedup blocks, pages, metadata. */
async function sample(dir: string, mib = 6): Promise<{ path: string; bytes: Uint8Array }> {
  const M = mib * 1024 * 1024 / 6;
  const data = new Uint8Array(6 * M);
  data.set(pseudoRandom(2 * M, 21), 0);
  data.set(pseudoRandom(M, 22), 4 * M);
  data.set(data.subarray(0, 65536 / (6 / mib)), 5 * M); // a duplicate block
  const path = await packBytes(dir, data, {
    compression: "zstd",
    blockSize: 1024, // several index pages
    metadata: { source: "corruption test" },
  });
  return { path, bytes: await Deno.readFile(path) };
}

/** Opens a damaged copy and reads everything; returns the error it must produce. */
async function damage(dir: string, bytes: Uint8Array, name: string): Promise<HexzError> {
  const p = `${dir}/${name}.hxz`;
  await Deno.writeFile(p, bytes);
  return await assertRejects(async () => {
    const a = await open(p);
    try {
      await check(a);
      await readAll(a, "disk");
    } finally {
      a.close();
    }
  }, HexzError) as HexzError;
}

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const c = bytes.slice();
  c[at] ^= 0x40;
  return c;
}

Deno.test("corruption in each kind of record gets its specific error", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const { bytes } = await sample(dir);
    const h = decodeHeader(bytes.subarray(0, HEADER_SIZE), bytes.length);
    const pages = decodeMaster(
      bytes.subarray(h.master.offset, h.master.offset + h.master.length),
      h,
    );
    const cases: [string, number, RegExp][] = [
      ["header", 30, /header checksum mismatch/],
      ["master index", h.master.offset + 20, /master index: checksum mismatch/],
      ["index page", pages[1].offset + 40, /\.hxz: disk index page 1: checksum mismatch/],
      ["metadata", h.metadata.offset + 2, /\.hxz: metadata section: checksum mismatch/],
    ];
    for (const [what, at, re] of cases) {
      const e = await damage(dir, flip(bytes, at), what);
      assertMatch(e.message, re, what);
      assertMatch(e.code, /corrupt/);
    }
    // A block payload: find the first data block through the format layer.
    const a = keep(await open(await sample(dir).then((s) => s.path)));
    let loc = -1;
    let index = -1;
    for await (const b of a.blocks("disk")) {
      if (b.entry.kind === KIND.data && b.index > 10) {
        loc = b.entry.location;
        index = b.index;
        break;
      }
    }
    a.close();
    const copy = (await sample(dir)).bytes; // identical layout (same input and options)
    const e = await damage(dir, flip(copy, loc + 8), "block");
    assertMatch(e.message, new RegExp(`disk block ${index} \\(offset ${index * 1024}\\)`));
  } finally {
    await done();
  }
});

Deno.test("truncated archives are refused, never read as valid", async () => {
  const [dir, done] = await tempDir();
  try {
    const { bytes } = await sample(dir);
    for (
      const n of [0, 3, 100, HEADER_SIZE - 1, HEADER_SIZE, bytes.length - 1, bytes.length >> 1]
    ) {
      const e = await damage(dir, bytes.slice(0, n), `trunc-${n}`);
      assertMatch(e.message, /not a hexz archive|truncated|outside the file/, `truncated to ${n}`);
    }
  } finally {
    await done();
  }
});

Deno.test("a header re-checksummed with hostile fields is refused without huge allocations", async () => {
  const [dir, done] = await tempDir();
  try {
    const { bytes } = await sample(dir);
    const base = decodeHeader(bytes.subarray(0, HEADER_SIZE), bytes.length);
    const variants: [string, (h: typeof base) => void, RegExp][] = [
      ["newer major", (h) => (h.versionMajor = 2), /unsupported format version 2/],
      ["unknown feature", (h) => (h.features |= 1 << 9), /unknown features/],
      ["huge master", (h) => (h.master.length = 2 ** 40), /master index .* outside the archive/],
      ["master past end", (h) => (h.master.offset = bytes.length - 10), /outside the archive/],
      ["page count lie", (h) => (h.streams[0].blockCount += 1), /pages hold/],
      ["archive end past file", (h) => (h.archiveEnd = bytes.length + 1), /outside the file/],
      [
        "file table flag without a table",
        (h) => (h.features |= FEATURE.fileTable),
        /file table flag and file table section disagree/,
      ],
    ];
    for (const [what, mutate, re] of variants) {
      const h = decodeHeader(bytes.subarray(0, HEADER_SIZE), bytes.length);
      mutate(h);
      const copy = bytes.slice();
      copy.set(encodeHeader(h), 0);
      const e = await damage(dir, copy, what.replaceAll(" ", "-"));
      assertMatch(e.message, re, what);
    }
  } finally {
    await done();
  }
});

Deno.test("a directory archive whose header drops the file table flag is refused", async () => {
  const [dir, done] = await tempDir();
  try {
    await Deno.mkdir(`${dir}/src`);
    await Deno.writeFile(`${dir}/src/f.bin`, pseudoRandom(10_000, 4));
    await build({ source: `${dir}/src`, output: `${dir}/t.hxz` });
    const bytes = await Deno.readFile(`${dir}/t.hxz`);
    const h = decodeHeader(bytes.subarray(0, HEADER_SIZE), bytes.length);
    h.features &= ~FEATURE.fileTable;
    bytes.set(encodeHeader(h), 0);
    const e = await damage(dir, bytes, "no-table-flag");
    assertMatch(e.message, /file table flag and file table section disagree/);
  } finally {
    await done();
  }
});

Deno.test("random byte flips anywhere are caught by check, and reads give an error or correct data", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const { path, bytes } = await sample(dir, 0.75);
    const a0 = keep(await open(path));
    const good = await readAll(a0, "disk");
    a0.close();
    const rnd = pseudoRandom(4 * 200, 23);
    for (let i = 0; i < 200; i++) {
      const at =
        ((rnd[4 * i] << 24) | (rnd[4 * i + 1] << 16) | (rnd[4 * i + 2] << 8) | rnd[4 * i + 3]) >>>
        0;
      const copy = flip(bytes, at % bytes.length);
      const p = `${dir}/flip.hxz`;
      await Deno.writeFile(p, copy);
      try {
        const a = await open(p);
        try {
          const got = await readAll(a, "disk");
          if (got.length !== good.length || got.some((b, k) => b !== good[k])) {
            throw new Error(`flip at ${at % bytes.length} returned wrong data without an error`);
          }
        } finally {
          a.close();
        }
      } catch (e) {
        if (!(e instanceof HexzError)) throw e;
      }
      // The root hash commits to every byte of the archive (FORMAT.md, "Hash chain"), so the
      // full check finds every flip, wherever it landed.
      await damage(dir, copy, "flip-check");
    }
  } finally {
    await done();
  }
});

Deno.test("check on several threads names the first damaged block, as one thread does", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    // 10 MiB of 64 KiB zstd blocks: 160 blocks, three jobs of 4 MiB.
    const path = await packBytes(dir, pseudoRandom(10 * 1024 * 1024, 23), { compression: "zstd" });
    const a = keep(await open(path));
    const late = (await a.block("disk", 150)).entry.location;
    const early = (await a.block("disk", 20)).entry.location;
    a.close();
    const bytes = await Deno.readFile(path);
    for (const workers of [1, 3, undefined]) {
      for (const at of [[late], [late, early]]) {
        let c: Uint8Array = bytes;
        for (const x of at) c = flip(c, x + 7);
        await Deno.writeFile(`${dir}/bad.hxz`, c);
        const bad = await open(`${dir}/bad.hxz`);
        try {
          await assertRejects(
            () => check(bad, { workers }),
            HexzError,
            at.length === 1
              ? /disk block 150 \(offset 9830400\)/
              : /disk block 20 \(offset 1310720\)/,
          );
        } finally {
          bad.close();
        }
      }
      // Undamaged: every block counted once.
      const good = await open(path);
      try {
        const r = await check(good, { workers });
        assertEquals([r.blocks, r.bytes], [160, 10 * 1024 * 1024]);
      } finally {
        good.close();
      }
    }
  } finally {
    await done();
  }
});
