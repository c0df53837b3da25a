import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { check, type EncryptOptions, open, pack } from "../mod.ts";
import { type DirectFile, openDirect } from "../core/io/direct.ts";
import { createWriter, type WriterOptions } from "../core/pack/writer.ts";
import { HexzError } from "../core/errors.ts";
import { assertBytesEqual, readAll } from "./_archive.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

const O_DIRECT = 0o40000; // x86-64 and arm64 Linux

/** The open flags of this process's descriptors on temporary archive files. */
function tempFileFlags(): number[] {
  const flags: number[] = [];
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (!Deno.readLinkSync(`/proc/self/fd/${e.name}`).includes(".hxz.tmp-")) continue;
      const info = Deno.readTextFileSync(`/proc/self/fdinfo/${e.name}`);
      flags.push(parseInt(/flags:\s+([0-7]+)/.exec(info)![1], 8));
    } catch { /* closed meanwhile */ }
  }
  return flags;
}

Deno.test("large packs with workers write around the page cache where they can, to the same archive", async () => {
  const [dir, done] = await tempDir();
  try {
    const MiB = 1 << 20;
    // Over the 64 MiB from which direct writes are used; incompressible pieces of odd sizes
    // make the archive's parts fall anywhere against the 4 KiB units.
    const img = new Uint8Array(70 * MiB);
    img.set(pseudoRandom(9 * MiB + 4321, 3), 0);
    img.set(new TextEncoder().encode("some text, compressible\n".repeat(400_000)), 20 * MiB);
    img.set(pseudoRandom(3 * MiB + 77, 4), 40 * MiB + 5);
    img.set(img.subarray(0, 2 * MiB), 60 * MiB); // repeats
    await Deno.writeFile(`${dir}/img`, img);
    const fixed = { uuid: new Uint8Array(16).fill(9), createdAtMs: 1_700_000_000_000 };

    const direct = openDirect(`${dir}/img`);
    direct?.close();
    if (!direct) console.error(`NOTE: ${dir} takes no O_DIRECT: only the fallback is tested`);
    const seen: number[] = [];
    await pack({
      output: `${dir}/par.hxz`,
      disk: `${dir}/img`,
      workers: 2,
      onProgress: () => seen.push(...tempFileFlags()),
      ...fixed,
    });
    assert(seen.length > 0, "no temporary archive file seen during the pack");
    assertEquals(seen.some((f) => (f & O_DIRECT) !== 0), !!direct, "direct writes");
    await pack({ output: `${dir}/ser.hxz`, disk: `${dir}/img`, workers: 1, ...fixed });
    assertBytesEqual(
      await Deno.readFile(`${dir}/par.hxz`),
      await Deno.readFile(`${dir}/ser.hxz`),
      "direct and cached writes",
    );

    // Encrypted: sealed blocks take the same way.
    const encrypt: EncryptOptions = {
      password: "pw",
      kdf: { name: "argon2id", memoryKiB: 256, iterations: 1, parallelism: 1 },
    };
    await pack({ output: `${dir}/enc.hxz`, disk: `${dir}/img`, workers: 2, encrypt });
    const a = await open(`${dir}/enc.hxz`, { password: "pw" });
    try {
      assertBytesEqual(await readAll(a, "disk"), img, "encrypted, read back");
      assertEquals((await check(a)).bytes, img.length); // throws on a bad block
    } finally {
      a.close();
    }

    // tmpfs (O_DIRECT since Linux 6.6; through the cache before): the same archive.
    let shm: string | null = null;
    try {
      shm = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "hexz-test-" });
    } catch {
      console.error("NOTE: no /dev/shm here: the tmpfs fallback is not tested");
    }
    if (shm) {
      try {
        await pack({ output: `${shm}/par.hxz`, disk: `${dir}/img`, workers: 2, ...fixed });
        assertBytesEqual(
          await Deno.readFile(`${shm}/par.hxz`),
          await Deno.readFile(`${dir}/ser.hxz`),
          "tmpfs",
        );
      } finally {
        await Deno.remove(shm, { recursive: true });
      }
    }
  } finally {
    await done();
  }
});

/** Writes the same pieces through a writer with `direct` and returns the file. */
async function writeWith(dir: string, name: string, direct: WriterOptions["direct"]) {
  const path = `${dir}/${name}.hxz`;
  const w = await createWriter(path, { direct });
  w.header.uuid = new Uint8Array(16).fill(1);
  w.header.createdAtMs = 1_700_000_000_000;
  try {
    // Around the 4 KiB units and the 8 MiB buffer: odd sizes, one larger than the buffer.
    for (const [n, seed] of [[3_000_001, 1], [5_242_883, 2], [12_582_917, 3], [100, 4]]) {
      await w.append(pseudoRandom(n, seed));
    }
    await w.finish();
  } catch (e) {
    await w.abort();
    throw e;
  }
  return await Deno.readFile(path);
}

/** Direct writes through a real descriptor that fail with `code` from the `failAt`th on. */
function failing(code: string, failAt: number) {
  let calls = 0;
  return (path: string): DirectFile | null => {
    const real = openDirect(path);
    if (!real) return null;
    return {
      writeAt(data, position) {
        if (++calls >= failAt) {
          throw Object.assign(new Error(`${code}: simulated, write`), { code });
        }
        real.writeAt(data, position);
      },
      close: () => real.close(),
    };
  };
}

Deno.test("the writer falls back to the cache when direct writes are refused, and fails on errors", async () => {
  const [dir, done] = await tempDir();
  try {
    const want = await writeWith(dir, "cached", false);
    assertBytesEqual(await writeWith(dir, "direct", true), want, "direct");
    assertBytesEqual(await writeWith(dir, "none", () => null), want, "no direct descriptor");
    // EINVAL on the second 8 MiB: the rest goes through the cache, same bytes.
    assertBytesEqual(await writeWith(dir, "einval", failing("EINVAL", 2)), want, "EINVAL");
    // Any other error fails the write, leaving neither output nor temporary file.
    await assertRejects(
      () => writeWith(dir, "eio", failing("EIO", 2)),
      HexzError,
      /eio\.hxz: cannot write: simulated/,
    );
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assertEquals(names, ["cached.hxz", "direct.hxz", "einval.hxz", "none.hxz"]);
  } finally {
    await done();
  }
});
