import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { build, type DataRange, findFile, pack, readFile } from "../mod.ts";
import { checkRanges, holeTest, sparseReads } from "../core/pack/input.ts";
import { findDataRanges } from "../ffi/sparse.ts";
import { assertBytesEqual, readAll, withOpen } from "./_archive.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

const MiB = 1024 * 1024;

/** A 24 MiB sparse file: data at [0, 1 MiB + 5), [9 MiB, 11 MiB) and [23 MiB, 24 MiB). */
async function sparseFile(path: string): Promise<Uint8Array> {
  const whole = new Uint8Array(24 * MiB);
  const parts: [number, Uint8Array][] = [
    [0, pseudoRandom(MiB + 5, 1)],
    [
      9 * MiB,
      new TextEncoder().encode("some text\n".repeat(2 * MiB / 10 + 1)).subarray(0, 2 * MiB),
    ],
    [23 * MiB, pseudoRandom(MiB, 2)],
  ];
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    await f.truncate(whole.length);
    for (const [at, bytes] of parts) {
      await f.seek(at, Deno.SeekMode.Start);
      let done = 0;
      while (done < bytes.length) done += await f.write(bytes.subarray(done));
      whole.set(bytes, at);
    }
  } finally {
    f.close();
  }
  return whole;
}

const covered = (ranges: DataRange[], at: number) =>
  ranges.some((r) => r.offset <= at && at < r.offset + r.length);

Deno.test("findDataRanges finds the data and the holes of a sparse file", async () => {
  const [dir, done] = await tempDir();
  try {
    await sparseFile(`${dir}/img`);
    const ranges = findDataRanges(`${dir}/img`);
    assert(ranges, "SEEK_DATA/SEEK_HOLE gave nothing (is FFI allowed? Linux?)");
    for (const at of [0, MiB + 4, 9 * MiB, 11 * MiB - 1, 23 * MiB, 24 * MiB - 1]) {
      assert(covered(ranges, at), `data at ${at} is not in ${JSON.stringify(ranges)}`);
    }
    // The file system here (ext4 or tmpfs) keeps holes; both report them.
    for (const at of [4 * MiB, 16 * MiB]) {
      assert(!covered(ranges, at), `hole at ${at} reported as data: ${JSON.stringify(ranges)}`);
    }
    for (let i = 1; i < ranges.length; i++) {
      assert(ranges[i].offset > ranges[i - 1].offset + ranges[i - 1].length - 1, "sorted");
    }
    assertEquals(findDataRanges(`${dir}/missing`), null);
  } finally {
    await done();
  }
});

Deno.test("findDataRanges is null without --allow-ffi, and never prompts", async () => {
  const [dir, done] = await tempDir();
  try {
    await sparseFile(`${dir}/img`);
    const url = new URL("../ffi/sparse.ts", import.meta.url).href;
    // (`deno eval` would allow everything: a script file run with read access only.)
    await Deno.writeTextFile(
      `${dir}/probe.ts`,
      `import { findDataRanges } from "${url}";
      console.log(JSON.stringify(findDataRanges(${JSON.stringify(`${dir}/img`)})));`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--allow-read", `${dir}/probe.ts`],
      stdin: "null",
    }).output();
    assertEquals(new TextDecoder().decode(out.stderr), "");
    assertEquals(new TextDecoder().decode(out.stdout).trim(), "null");
    assert(out.success);
  } finally {
    await done();
  }
});

Deno.test("checkRanges clamps to the file and refuses unsorted or negative ranges", () => {
  assertEquals(checkRanges([{ offset: 0, length: 10 }, { offset: 90, length: 20 }], 100), [
    { offset: 0, length: 10 },
    { offset: 90, length: 10 },
  ]);
  assertEquals(checkRanges([{ offset: 120, length: 5 }], 100), []);
  assertThrows(() => checkRanges([{ offset: 10, length: 10 }, { offset: 15, length: 1 }], 100));
  assertThrows(() => checkRanges([{ offset: 0, length: -1 }], 100));
  assertThrows(() => checkRanges([{ offset: 0.5, length: 1 }], 100));
});

Deno.test("holeTest: only ranges touching no data are holes", () => {
  const t = holeTest([{ offset: 100, length: 50 }, { offset: 400, length: 1 }]);
  assertEquals(t(0, 100), true);
  assertEquals(t(50, 51), false); // touches 100
  assertEquals(t(149, 10), false);
  assertEquals(t(150, 250), true);
  assertEquals(t(399, 2), false);
  assertEquals(t(401, 1000), true);
});

Deno.test("sparseReads reads data ranges and zero-fills holes without reading them", async () => {
  const [dir, done] = await tempDir();
  try {
    const whole = await sparseFile(`${dir}/img`);
    const readAllOf = async (ranges: DataRange[], chunk: number) => {
      const f = await Deno.open(`${dir}/img`);
      try {
        const input = sparseReads(f, whole.length, ranges);
        const out = new Uint8Array(whole.length + chunk);
        let n = 0;
        for (;;) {
          // Dirty buffers: holes must be written as zeros, not left alone.
          out.subarray(n, n + chunk).fill(0xee);
          const got = await input.read(out.subarray(n, n + chunk));
          if (got === null) break;
          n += got;
        }
        return out.subarray(0, n);
      } finally {
        f.close();
      }
    };
    const truth = findDataRanges(`${dir}/img`)!;
    for (const chunk of [4096, 1_000_003, 16 * MiB]) {
      assertBytesEqual(await readAllOf(truth, chunk), whole, `true ranges, ${chunk}`);
    }
    // Ranges that leave out real data prove the holes are not read: those bytes come back zero.
    const lying = [{ offset: 0, length: 1000 }, { offset: 9 * MiB + 10, length: 10 }];
    const expect = new Uint8Array(whole.length);
    expect.set(whole.subarray(0, 1000), 0);
    expect.set(whole.subarray(9 * MiB + 10, 9 * MiB + 20), 9 * MiB + 10);
    assertBytesEqual(await readAllOf(lying, 65536), expect, "lying ranges");
  } finally {
    await done();
  }
});

Deno.test("pack skips holes: the same archive with or without data ranges, holes never read", async () => {
  const [dir, done] = await tempDir();
  try {
    const whole = await sparseFile(`${dir}/img`);
    const fixed = { uuid: new Uint8Array(16).fill(9), createdAtMs: 1_700_000_000_000 };
    // Claims everything from 4 MiB on is a hole, though the file has data at 9-11 and 23-24 MiB.
    // (4 MiB lies in a real hole, so a block reaching over it reads zeros there either way.)
    const lying = () => [{ offset: 0, length: 4 * MiB }];
    const expectLying = whole.slice();
    expectLying.fill(0, 4 * MiB);
    for (const cdc of [false, true]) {
      for (const workers of [1, 2]) {
        const what = `cdc=${cdc} workers=${workers}`;
        const outs: Uint8Array[] = [];
        for (const [name, find] of [["plain", () => null], ["sparse", undefined]] as const) {
          const output = `${dir}/${name}-${cdc}-${workers}.hxz`;
          await pack({ output, disk: `${dir}/img`, cdc, workers, findDataRanges: find, ...fixed });
          outs.push(await Deno.readFile(output));
        }
        assertBytesEqual(outs[1], outs[0], `${what}: archives differ`);
        const output = `${dir}/lying-${cdc}-${workers}.hxz`;
        await pack({ output, disk: `${dir}/img`, cdc, workers, findDataRanges: lying, ...fixed });
        const got = await withOpen(output, (a) => readAll(a, "disk"));
        assertBytesEqual(got, expectLying, `${what}: a hole was read`);
      }
    }
  } finally {
    await done();
  }
});

Deno.test("build skips the holes of sparse files in the tree, same archive either way", async () => {
  const [dir, done] = await tempDir();
  try {
    await Deno.mkdir(`${dir}/tree/vm`, { recursive: true });
    const whole = await sparseFile(`${dir}/tree/vm/disk.img`);
    await Deno.writeTextFile(`${dir}/tree/notes.txt`, "hello\n");
    const fixed = { uuid: new Uint8Array(16).fill(5), createdAtMs: 1_700_000_000_000 };
    // Serial and parallel (whose workers read the tree's files themselves), fixed and CDC.
    for (const cdc of [false, true]) {
      const outs: Uint8Array[] = [];
      for (const workers of [1, 2]) {
        for (const [name, find] of [["plain", () => null], ["sparse", undefined]] as const) {
          const output = `${dir}/${name}-${cdc}-${workers}.hxz`;
          await build({
            output,
            source: `${dir}/tree`,
            findDataRanges: find,
            cdc,
            workers,
            ...fixed,
          });
          outs.push(await Deno.readFile(output));
        }
      }
      for (let i = 1; i < outs.length; i++) assertBytesEqual(outs[i], outs[0], `cdc=${cdc} #${i}`);
    }
    const lying = (path: string) =>
      path.endsWith("disk.img") ? [{ offset: 0, length: 4 * MiB }] : null;
    await build({ output: `${dir}/lying.hxz`, source: `${dir}/tree`, findDataRanges: lying });
    await withOpen(`${dir}/lying.hxz`, async (a) => {
      const expect = whole.slice();
      expect.fill(0, 4 * MiB);
      assertBytesEqual(
        await readFile(a, await findFile(a, "vm/disk.img")),
        expect,
        "a hole was read",
      );
      assertEquals(
        new TextDecoder().decode(await readFile(a, await findFile(a, "notes.txt"))),
        "hello\n",
      );
    });
  } finally {
    await done();
  }
});
