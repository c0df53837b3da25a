import { assert, assertEquals } from "./_assert.ts";
import { check, type EncryptOptions, open, pack } from "../mod.ts";
import { openDirect } from "../core/io/direct.ts";
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

    // A file system without O_DIRECT (tmpfs) gets the same archive through the cache.
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
