import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { HexzError, inspect, open, pack } from "../mod.ts";
import { openOverlay } from "../core/overlay/overlay.ts";
import { commitOverlay } from "../core/overlay/commit.ts";
import { flatten } from "../core/pack/repack.ts";
import { assertBytesEqual, packBytes, readAll } from "./_archive.ts";
import { build } from "../core/pack/build.ts";
import { fileTable } from "../core/read/files.ts";
import { changedFiles } from "../core/overlay/changed_files.ts";
import { hexz } from "./_cli.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

const MiB = 1024 * 1024;

async function baseArchive(dir: string): Promise<Uint8Array> {
  const img = new Uint8Array(4 * MiB + 1000); // a partial last 4 KiB block
  img.set(pseudoRandom(2 * MiB, 51), 0);
  await Deno.writeFile(`${dir}/base.img`, img);
  await pack({ output: `${dir}/base.hxz`, disk: `${dir}/base.img`, compression: "zstd" });
  return img;
}

/** The same edits applied to a plain buffer and to an overlay. */
async function edit(img: Uint8Array, ov: Awaited<ReturnType<typeof openOverlay>>) {
  const edits: [number, Uint8Array][] = [
    [10, new TextEncoder().encode("hello, overlay")], // inside block 0
    [4096 * 3 - 5, pseudoRandom(10_000, 52)], // spans blocks 2..5, unaligned both ends
    [3 * MiB, pseudoRandom(8192, 53)], // aligned, in the empty part
    [img.length - 7, new Uint8Array([1, 2, 3, 4, 5, 6, 7])], // the partial last block
  ];
  for (const [off, data] of edits) {
    img.set(data, off);
    await ov.write("disk", off, data);
  }
  img.fill(0, 100_000, 300_123);
  await ov.writeZeroes("disk", 100_000, 200_123);
  // Zeros with no whole block inside: inside one block, and across one boundary (the second
  // block's part was once left as it was).
  const zeros: [number, number][] = [[4096 * 3 - 5, 3], [4096 * 4 - 80, 4000], [
    3 * MiB + 4000,
    200,
  ]];
  for (const [off, n] of zeros) {
    img.fill(0, off, off + n);
    await ov.writeZeroes("disk", off, n);
  }
}

Deno.test("overlay reads merge its writes with the base, at any alignment", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const img = await baseArchive(dir);
    const base = keep(await open(`${dir}/base.hxz`));
    const ov = keep(await openOverlay(`${dir}/o.hxo`, base, { create: true }));
    await edit(img, ov);
    assertBytesEqual(await ov.read("disk", 0, img.length), img, "merged view");
    const rnd = pseudoRandom(600, 54);
    for (let i = 0; i < 100; i++) {
      const off = ((rnd[i] << 16) | (rnd[i + 1] << 8) | rnd[i + 2]) % img.length;
      const len = Math.min(img.length - off, rnd[i + 3] * 97);
      assertBytesEqual(await ov.read("disk", off, len), img.subarray(off, off + len));
    }
    const st = ov.stats();
    assert(st.changedBlocks[0] > 50 && st.zeroBlocks[0] >= 48, JSON.stringify(st));
    await assertRejects(
      () => ov.write("disk", img.length - 1, new Uint8Array(2)),
      HexzError,
      /outside/,
    );
    await ov.flush();
    ov.close();
    // Reopened: the same view (the log was replayed).
    const again = keep(await openOverlay(`${dir}/o.hxo`, base));
    assertBytesEqual(await again.read("disk", 0, img.length), img, "after reopen");
    again.close();
    base.close();
  } finally {
    await done();
  }
});

Deno.test("overlay survives a torn last record: flushed writes stay, the torn tail is cut", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const img = await baseArchive(dir);
    const base = keep(await open(`${dir}/base.hxz`));
    const ov = keep(await openOverlay(`${dir}/o.hxo`, base, { create: true }));
    await ov.write("disk", 0, pseudoRandom(8192, 55));
    await ov.flush();
    const good = await ov.read("disk", 0, img.length);
    await ov.write("disk", MiB, pseudoRandom(3 * 4096, 56));
    await ov.flush();
    ov.close();
    // Simulate a crash in the middle of writing the second record.
    const size = (await Deno.stat(`${dir}/o.hxo`)).size;
    await Deno.truncate(`${dir}/o.hxo`, size - 5000);
    const re = keep(await openOverlay(`${dir}/o.hxo`, base));
    assertBytesEqual(await re.read("disk", 0, img.length), good, "state before the torn write");
    assertEquals(re.stats().records, 1);
    // New writes append after the intact records.
    await re.write("disk", 2 * MiB, new Uint8Array([9, 9, 9]));
    re.close();
    const re2 = keep(await openOverlay(`${dir}/o.hxo`, base));
    assertEquals([...(await re2.read("disk", 2 * MiB, 3))], [9, 9, 9]);
    assertEquals(re2.stats().records, 2);
    re2.close();
    const bytes = await Deno.readFile(`${dir}/o.hxo`);
    // Zeros after the last record (a crash after the file grew): a torn tail, cut off.
    await Deno.writeFile(`${dir}/o.hxo`, new Uint8Array([...bytes, ...new Uint8Array(1000)]));
    const re3 = keep(await openOverlay(`${dir}/o.hxo`, base, { readOnly: true }));
    assertEquals(re3.stats().records, 2);
    re3.close();
    // Part of a record header after the last record (a write cut short): a torn tail too.
    for (const n of [10, 63]) {
      const torn = new Uint8Array([...bytes, ...bytes.subarray(4096, 4096 + n)]);
      await Deno.writeFile(`${dir}/o.hxo`, torn);
      const t = keep(await openOverlay(`${dir}/o.hxo`, base, { readOnly: true }));
      assertEquals(t.stats().records, 2, `${n} bytes of a header`);
      t.close();
    }
    // A damaged byte in the last record: that record is the torn one.
    const lastDamaged = bytes.slice();
    lastDamaged[bytes.length - 10] ^= 1;
    await Deno.writeFile(`${dir}/o.hxo`, lastDamaged);
    const re4 = keep(await openOverlay(`${dir}/o.hxo`, base, { readOnly: true }));
    assertEquals(re4.stats().records, 1);
    re4.close();
    // A damaged byte in a record with others after it is damage, not a crash: replaying only
    // what comes before would drop the later writes (and commit would then delete them all).
    const firstDamaged = bytes.slice();
    firstDamaged[4096 + 64 + 100] ^= 1;
    await Deno.writeFile(`${dir}/o.hxo`, firstDamaged);
    await assertRejects(
      () => openOverlay(`${dir}/o.hxo`, base, { readOnly: true }),
      HexzError,
      /o\.hxo: overlay record at byte 4096 is damaged and \d+ bytes of records follow it/,
    );
    const r = await hexz(["commit", `${dir}/base.hxz`, `${dir}/o.hxo`, `${dir}/c.hxz`]);
    assertEquals(r.code, 1, r.err);
    assertMatch(r.err, /is damaged/);
    assert(await Deno.stat(`${dir}/o.hxo`), "the overlay is kept");
    base.close();
  } finally {
    await done();
  }
});

Deno.test("overlay refuses an archive it was not made for", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    await baseArchive(dir);
    const base = keep(await open(`${dir}/base.hxz`));
    (await openOverlay(`${dir}/o.hxo`, base, { create: true })).close();
    await pack({ output: `${dir}/other.hxz`, disk: `${dir}/base.img` });
    const other = keep(await open(`${dir}/other.hxz`));
    const e = await assertRejects(() => openOverlay(`${dir}/o.hxo`, other), HexzError);
    assertMatch(e.message, /overlay belongs to archive/);
    other.close();
    base.close();
  } finally {
    await done();
  }
});

Deno.test("commit of an overlay equals packing the modified image", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const img = await baseArchive(dir);
    const base = keep(await open(`${dir}/base.hxz`));
    const ov = keep(await openOverlay(`${dir}/o.hxo`, base, { create: true }));
    await edit(img, ov);
    await Deno.writeFile(`${dir}/modified.img`, img);
    const fixed = { uuid: new Uint8Array(16).fill(5), createdAtMs: 1_800_000_000_000, message: "" };
    // Flattened commit == packing the modified image with the same options, byte for byte.
    await commitOverlay(base, ov, { output: `${dir}/flat.hxz`, mode: "flatten", ...fixed });
    await pack({
      output: `${dir}/direct.hxz`,
      disk: `${dir}/modified.img`,
      compression: "zstd",
      ...fixed,
    });
    assertBytesEqual(
      await Deno.readFile(`${dir}/flat.hxz`),
      await Deno.readFile(`${dir}/direct.hxz`),
      "flat vs direct",
    );
    // Thin commit: same bytes, stored as a small child of the base.
    await commitOverlay(base, ov, { output: `${dir}/thin.hxz` });
    ov.close();
    base.close();
    const t = await open(`${dir}/thin.hxz`);
    try {
      assertBytesEqual(await readAll(t, "disk"), img, "thin commit");
      const s = inspect(t).streams[0];
      assert(s.parentBlocks > 0 && s.storedBytes < 200 * 1024, `stored ${s.storedBytes}`);
    } finally {
      t.close();
    }
  } finally {
    await done();
  }
});

Deno.test("overlay --files names the files of a directory archive whose contents changed", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    await Deno.mkdir(`${dir}/src/sub`, { recursive: true });
    await Deno.writeFile(`${dir}/src/a.bin`, pseudoRandom(10_000, 1));
    await Deno.writeFile(`${dir}/src/empty`, new Uint8Array(0));
    await Deno.writeFile(`${dir}/src/sub/b.bin`, pseudoRandom(20_000, 2));
    await Deno.writeFile(`${dir}/src/sub/c.bin`, pseudoRandom(5_000, 3));
    const out = `${dir}/t.hxz`;
    await build({ source: `${dir}/src`, output: out });
    const base = await open(out);
    try {
      const table = (await fileTable(base))!;
      const b = table.find((e) => e.path === "sub/b.bin")!;
      const ov = keep(await openOverlay(`${dir}/t.hxo`, base, { create: true }));
      // 3 bytes in the middle of b.bin: the whole 4 KiB block around them counts as changed,
      // and only b.bin's share of that block is reported.
      await ov.write("disk", b.offset + 5000, new Uint8Array([1, 2, 3]));
      await ov.flush();
      const changed = changedFiles(table, ov.changed("disk"));
      ov.close();
      assertEquals(changed.map((c) => c.path), ["sub/b.bin"]);
      assert(changed[0].changedBytes > 0 && changed[0].changedBytes <= 4096);
    } finally {
      base.close();
    }
    const r = await hexz(["overlay", `${dir}/t.hxo`, "--base", out, "--files"]);
    assertEquals(r.code, 0, r.err);
    assertMatch(r.out, /files: 1 changed/);
    assertMatch(r.out, /sub\/b\.bin .* changed/);
    const plain = await packBytes(dir, pseudoRandom(8192, 4));
    const p = keep(await open(plain));
    const ov = keep(await openOverlay(`${dir}/p.hxo`, p, { create: true }));
    ov.close();
    p.close();
    const bad = await hexz(["overlay", `${dir}/p.hxo`, "--base", plain, "--files"]);
    assertEquals(bad.code, 2);
    assertMatch(bad.err, /not a directory archive/);
  } finally {
    await done();
  }
});

Deno.test("an overlay has one writer at a time, and no reader (commit) while it is written", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    await baseArchive(dir);
    const base = keep(await open(`${dir}/base.hxz`));
    const w = keep(await openOverlay(`${dir}/o.hxo`, base, { create: true }));
    await w.write("disk", 0, new Uint8Array([1, 2, 3]));
    await w.flush();
    await assertRejects(
      () => openOverlay(`${dir}/o.hxo`, base),
      HexzError,
      /o\.hxo: in use by another mount or NBD server/,
    );
    await assertRejects(
      () => openOverlay(`${dir}/o.hxo`, base, { readOnly: true }),
      HexzError,
      /being written by a mount or an NBD server/,
    );
    // A reader that knows the writer is paused (a VM stopped over QMP) sees what it flushed.
    const paused = await openOverlay(`${dir}/o.hxo`, base, { readOnly: true, writerPaused: true });
    assertEquals([...(await paused.read("disk", 0, 3))], [1, 2, 3]);
    paused.close();
    const r = await hexz(["commit", `${dir}/base.hxz`, `${dir}/o.hxo`, `${dir}/c.hxz`]);
    assertEquals(r.code, 1, r.err);
    assert(await Deno.stat(`${dir}/o.hxo`), "the overlay in use is kept");
    w.close();
    // Released on close: readers share, a writer comes after them.
    const r1 = keep(await openOverlay(`${dir}/o.hxo`, base, { readOnly: true }));
    const r2 = keep(await openOverlay(`${dir}/o.hxo`, base, { readOnly: true }));
    assertEquals([...(await r2.read("disk", 0, 3))], [1, 2, 3]);
    r1.close();
    r2.close();
    const w2 = keep(await openOverlay(`${dir}/o.hxo`, base));
    w2.close();
    base.close();
  } finally {
    await done();
  }
});

Deno.test("commit and flatten of a directory archive keep its file table and metadata", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    await Deno.mkdir(`${dir}/src/sub`, { recursive: true });
    await Deno.writeFile(`${dir}/src/a.bin`, pseudoRandom(10_000, 1));
    await Deno.writeFile(`${dir}/src/sub/b.bin`, pseudoRandom(20_000, 2));
    await Deno.symlink("sub/b.bin", `${dir}/src/link`);
    const out = `${dir}/t.hxz`;
    await build({ source: `${dir}/src`, output: out, metadata: { owner: "ci", run: 7 } });
    const base = keep(await open(out));
    const table = (await fileTable(base))!;
    const b = table.find((e) => e.path === "sub/b.bin")!;
    const ov = keep(await openOverlay(`${dir}/t.hxo`, base, { create: true }));
    await ov.write("disk", b.offset + 100, new TextEncoder().encode("CHANGED"));
    await ov.flush();
    await commitOverlay(base, ov, { output: `${dir}/thin.hxz` });
    await commitOverlay(base, ov, { output: `${dir}/flat.hxz`, mode: "flatten" });
    // Metadata given to the commit replaces the base's.
    await commitOverlay(base, ov, { output: `${dir}/own.hxz`, metadata: { note: "mine" } });
    ov.close();
    base.close();
    await flatten(await open(`${dir}/thin.hxz`), { output: `${dir}/flat2.hxz` });
    for (const name of ["thin", "flat", "flat2", "own"]) {
      const a = await open(`${dir}/${name}.hxz`);
      try {
        assertEquals(await fileTable(a), table, `${name}: file table`);
        assertEquals(
          await a.metadata(),
          name === "own" ? { note: "mine" } : { owner: "ci", run: 7 },
          `${name}: metadata`,
        );
      } finally {
        a.close();
      }
      // The tree comes out with the committed change in it.
      const r = await hexz(["extract", `${dir}/${name}.hxz`, `${dir}/x-${name}`, "-q"]);
      assertEquals(r.code, 0, r.err);
      const got = await Deno.readFile(`${dir}/x-${name}/sub/b.bin`);
      assertEquals(new TextDecoder().decode(got.subarray(100, 107)), "CHANGED");
      assertEquals(await Deno.readLink(`${dir}/x-${name}/link`), "sub/b.bin");
    }
  } finally {
    await done();
  }
});

Deno.test("flatten leaves out the figures of a dictionary it does not keep", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const text = new TextEncoder().encode(
      Array.from({ length: 40_000 }, (_, i) => `line ${i % 977} of the log, status ${i % 13}\n`)
        .join(""),
    );
    const a = await packBytes(dir, text, {
      compression: "zstd",
      blockSize: 4096,
      // Small enough for this text to repay it (a dictionary is stored only if it does).
      trainDictionary: { maxSize: 8 * 1024 },
      metadata: { source: "logs" },
    });
    const src = keep(await open(a));
    const meta = await src.metadata() as Record<string, unknown>;
    assert(meta.dictionary !== undefined, "the packed archive records its training");
    await flatten(src, { output: `${dir}/f.hxz`, compression: "lz4" });
    src.close();
    const f = await open(`${dir}/f.hxz`);
    try {
      assertEquals(await f.metadata(), { source: "logs" });
      assertBytesEqual(await readAll(f, "disk"), text, "flattened");
    } finally {
      f.close();
    }
  } finally {
    await done();
  }
});

Deno.test("commit keeps the base's codec unless told otherwise; memory: a file as the memory stream", async () => {
  const [dir, done] = await tempDir("hexz-ov-");
  try {
    await baseArchive(dir); // zstd level 3
    const base = await open(`${dir}/base.hxz`);
    const ov = await openOverlay(`${dir}/b.hxo`, base, { create: true });
    await ov.write("disk", 4096, pseudoRandom(4096, 9));
    await ov.flush();
    const state = pseudoRandom(300_000, 10);
    await Deno.writeFile(`${dir}/state.bin`, state);
    // Options passed as undefined are not given (the CLI passes absent flags so).
    await commitOverlay(base, ov, {
      output: `${dir}/same.hxz`,
      compression: undefined,
      level: undefined,
      memory: `${dir}/state.bin`,
    });
    await commitOverlay(base, ov, { output: `${dir}/lz4.hxz`, compression: "lz4" });
    ov.close();
    base.close();
    const same = await open(`${dir}/same.hxz`);
    assertEquals(inspect(same).compression, { codec: "zstd", level: 3 });
    assertBytesEqual(await same.read("memory", 0, state.length), state);
    assertBytesEqual(await same.read("disk", 4096, 4096), pseudoRandom(4096, 9));
    same.close();
    const lz4 = await open(`${dir}/lz4.hxz`);
    assertEquals(inspect(lz4).compression, { codec: "lz4", level: 1 });
    lz4.close();
  } finally {
    await done();
  }
});

Deno.test("compaction keeps only each block's latest content, in the same format", async () => {
  const [dir, done] = await tempDir();
  try {
    const img = await baseArchive(dir);
    const base = await open(`${dir}/base.hxz`);
    try {
      const path = `${dir}/o.hxo`;
      const ov = await openOverlay(path, base, { create: true });
      try {
        // The same blocks rewritten again and again, then some zeroed and a partial write.
        for (let i = 0; i < 6; i++) {
          const data = pseudoRandom(300_000, 60 + i);
          img.set(data, 8192);
          await ov.write("disk", 8192, data);
        }
        img.fill(0, 40_960, 81_920);
        await ov.writeZeroes("disk", 40_960, 40_960);
        await edit(img, ov);
        const before = ov.stats();
        assert(before.compactSize < before.fileSize / 3, JSON.stringify(before));
        // Reads in flight while the log is replaced finish with the right bytes.
        const rnd = pseudoRandom(200, 75);
        const reads = Array.from({ length: 40 }, (_, i) => {
          const off = ((rnd[i] << 12) | (rnd[i + 1] << 4)) % img.length;
          const len = Math.min(img.length - off, 1 + rnd[i + 2] * 300);
          return ov.read("disk", off, len).then((b) => [off, len, b] as const);
        });
        const r = await ov.compact();
        for (const [off, len, b] of await Promise.all(reads)) {
          assertBytesEqual(b, img.subarray(off, off + len), `read at ${off} during compaction`);
        }
        assertEquals(r, { before: before.fileSize, after: before.compactSize });
        assertEquals((await Deno.stat(path)).size, before.compactSize);
        const after = ov.stats();
        assertEquals(after.changedBlocks, before.changedBlocks);
        assertEquals(after.zeroBlocks, before.zeroBlocks);
        assertEquals(after.fileSize, after.compactSize);
        assertBytesEqual(await ov.read("disk", 0, img.length), img, "after compaction");
        // Writes go on, to the new file.
        const more = pseudoRandom(5000, 70);
        img.set(more, 2 * MiB + 3);
        await ov.write("disk", 2 * MiB + 3, more);
        await ov.flush();
      } finally {
        ov.close();
      }
      // Nothing left beside it, and a reopened log replays to the same view.
      assertEquals(
        [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith("o.hxo")),
        ["o.hxo"],
      );
      const again = await openOverlay(path, base, { readOnly: true });
      try {
        assertBytesEqual(await again.read("disk", 0, img.length), img, "reopened");
      } finally {
        again.close();
      }
      // A commit of the compacted overlay is the edited image.
      const r = await hexz(["commit", `${dir}/base.hxz`, path, `${dir}/c.hxz`, "--flatten"]);
      assertEquals(r.code, 0, r.err);
      const c = await open(`${dir}/c.hxz`);
      try {
        assertBytesEqual(await c.read("disk", 0, img.length), img, "commit");
      } finally {
        c.close();
      }
    } finally {
      base.close();
    }
  } finally {
    await done();
  }
});

Deno.test("a writable open compacts a mostly dead log; read-only opens and --compact", async () => {
  const [dir, done] = await tempDir();
  try {
    const img = await baseArchive(dir);
    const base = await open(`${dir}/base.hxz`);
    try {
      const path = `${dir}/o.hxo`;
      // (Not compacted while written, which the default would do: see overlay_online_test.ts.)
      const ov = await openOverlay(path, base, { create: true, onlineCompact: false });
      try {
        // 17 rewrites of 4 MiB: 64 MiB of dead versions, far more than the live 4 MiB.
        for (let i = 0; i < 17; i++) {
          const data = pseudoRandom(4 * MiB, 80 + i);
          img.set(data, 0);
          await ov.write("disk", 0, data);
        }
        await ov.flush();
      } finally {
        ov.close();
      }
      const big = (await Deno.stat(path)).size;
      assert(big > 68 * MiB, `log of ${big} bytes`);
      // Read-only: never rewritten.
      const ro = await openOverlay(path, base, { readOnly: true });
      ro.close();
      assertEquals((await Deno.stat(path)).size, big);
      // The CLI reports what compaction would leave, and --compact does it.
      let r = await hexz(["overlay", path, "--base", `${dir}/base.hxz`, "--json"]);
      assertEquals(r.code, 0, r.err);
      const report = JSON.parse(r.out);
      assertEquals(report.fileSize, big);
      assert(report.compactSize < 4 * MiB + 8192, r.out);
      // Writable with autoCompact off: as it was; then on (the default): compacted.
      (await openOverlay(path, base, { autoCompact: false })).close();
      assertEquals((await Deno.stat(path)).size, big);
      const rw = await openOverlay(path, base);
      try {
        assertEquals((await Deno.stat(path)).size, report.compactSize);
        assertBytesEqual(await rw.read("disk", 0, img.length), img, "auto-compacted");
      } finally {
        rw.close();
      }
      // Already compact: --compact leaves the same size and says so.
      r = await hexz(["overlay", path, "--base", `${dir}/base.hxz`, "--compact"]);
      assertEquals(r.code, 0, r.err);
      assertMatch(r.out, /^compacted: 4(\.\d+)? MiB -> 4(\.\d+)? MiB$/m);
      assertMatch(r.out, /\(4(\.\d+)? MiB, 1 record\)/);
      // Not while a writer has it.
      const busy = await openOverlay(path, base);
      try {
        r = await hexz(["overlay", path, "--base", `${dir}/base.hxz`, "--compact"]);
        assertEquals(r.code, 1);
        assertMatch(r.err, /^hexz: .*in use/);
      } finally {
        busy.close();
      }
    } finally {
      base.close();
    }
  } finally {
    await done();
  }
});
