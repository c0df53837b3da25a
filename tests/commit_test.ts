/**
 * `commit` and `flatten` keep what the base was made with (codec, level, chunking, message,
 * encryption) unless told otherwise: a thin child chunked like its base, an encrypted base
 * never flattened into plaintext.
 */
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { type HexzError, open, pack } from "../mod.ts";
import { openOverlay } from "../core/overlay/overlay.ts";
import { commitOverlay } from "../core/overlay/commit.ts";
import { flatten } from "../core/pack/repack.ts";
import { hexz } from "./_cli.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

const FAST = {
  password: "correct horse",
  kdf: { name: "argon2id" as const, memoryKiB: 256, iterations: 1, parallelism: 1 },
};

async function baseWithOverlay(dir: string, encrypt = false) {
  const img = new Uint8Array(300_000);
  img.set(pseudoRandom(200_000, 7));
  await Deno.writeFile(`${dir}/base.img`, img);
  await pack({
    output: `${dir}/base.hxz`,
    disk: `${dir}/base.img`,
    compression: "zstd",
    level: 7,
    blockSize: 16 * 1024,
    message: "the base",
    encrypt: encrypt ? FAST : undefined,
  });
  const base = await open(`${dir}/base.hxz`, encrypt ? { password: FAST.password } : {});
  const ov = await openOverlay(`${dir}/base.hxo`, base, { create: true });
  const edit = new TextEncoder().encode("CHANGED");
  await ov.write("disk", 100, edit);
  await ov.flush();
  img.set(edit, 100);
  ov.close();
  base.close();
  return img;
}

function header(h: { codec: number; level: number; blockSize: number; message: string }) {
  return { codec: h.codec, level: h.level, blockSize: h.blockSize, message: h.message };
}

Deno.test("commit keeps the base's codec, level, chunking and message unless told otherwise", async () => {
  const [dir, done] = await tempDir();
  try {
    await baseWithOverlay(dir);
    const b = await open(`${dir}/base.hxz`);
    const want = header(b.header);
    b.close();
    assertEquals(want.level, 7);
    for (const mode of [[], ["--flatten"]]) {
      const out = `${dir}/c${mode.length}.hxz`;
      const r = await hexz([
        "commit",
        `${dir}/base.hxz`,
        `${dir}/base.hxo`,
        out,
        "-q",
        "--keep-overlay",
        ...mode,
      ]);
      assertEquals(r.code, 0, r.err);
      const c = await open(out);
      assertEquals(header(c.header), want, `commit ${mode.join(" ")}`);
      c.close();
    }
    // What is given replaces it; another codec comes with its own default level.
    const r = await hexz([
      "commit",
      `${dir}/base.hxz`,
      `${dir}/base.hxo`,
      `${dir}/lz4.hxz`,
      "-q",
      "--keep-overlay",
      "--flatten",
      "--compression",
      "lz4",
      "-m",
      "mine",
    ]);
    assertEquals(r.code, 0, r.err);
    const c = await open(`${dir}/lz4.hxz`);
    assertEquals(header(c.header), { codec: 1, level: 1, blockSize: 16 * 1024, message: "mine" });
    c.close();
    // The library: options present but undefined are as good as absent.
    const base = await open(`${dir}/base.hxz`);
    const ov = await openOverlay(`${dir}/base.hxo`, base, { readOnly: true });
    await commitOverlay(base, ov, {
      output: `${dir}/lib.hxz`,
      mode: "flatten",
      compression: undefined,
      level: undefined,
      message: undefined,
      blockSize: undefined,
    });
    ov.close();
    await flatten(base, { output: `${dir}/flat.hxz`, message: undefined, compression: undefined });
    base.close();
    for (const name of ["lib", "flat"]) {
      const a = await open(`${dir}/${name}.hxz`);
      assertEquals(header(a.header), want, name);
      a.close();
    }
  } finally {
    await done();
  }
});

Deno.test("commit --flatten and flatten of an encrypted base stay encrypted with its password", async () => {
  const [dir, done] = await tempDir();
  try {
    const img = await baseWithOverlay(dir, true);
    const base = await open(`${dir}/base.hxz`, { password: FAST.password });
    const ov = await openOverlay(`${dir}/base.hxo`, base, { readOnly: true });
    await commitOverlay(base, ov, { output: `${dir}/flat.hxz`, mode: "flatten" });
    ov.close();
    await flatten(base, { output: `${dir}/copy.hxz` });
    base.close();
    for (const [name, want] of [["flat", img], ["copy", null]] as const) {
      const locked = await open(`${dir}/${name}.hxz`);
      assert(locked.header.encryption, `${name}: written unencrypted`);
      const e = await assertRejects(() => locked.read("disk", 0, 16));
      assertEquals((e as HexzError).code, "password");
      locked.close();
      const a = await open(`${dir}/${name}.hxz`, { password: FAST.password });
      const got = await a.read("disk", 0, img.length);
      a.close();
      if (want) assertEquals(got, want, name);
      else assertEquals(got.subarray(200), img.subarray(200), name);
    }
    // Without the password there is nothing to flatten: refused, nothing written.
    const locked = await open(`${dir}/base.hxz`);
    const e = await assertRejects(() => flatten(locked, { output: `${dir}/no.hxz` }));
    assertEquals((e as HexzError).code, "password");
    locked.close();
    await assertRejects(() => Deno.stat(`${dir}/no.hxz`));
    // The command line takes the password as every command does.
    await Deno.writeTextFile(`${dir}/pw`, FAST.password + "\n");
    const modes: [string, string[]][] = [["--thin", ["--password-file", `${dir}/pw`]], [
      "--flatten",
      [],
    ]];
    for (const [mode, pw] of modes) {
      const out = `${dir}/cli${mode}.hxz`;
      const r = await hexz(
        ["commit", `${dir}/base.hxz`, `${dir}/base.hxo`, out, "-q", "--keep-overlay", mode, ...pw],
        { env: pw.length ? {} : { HEXZ_PASSWORD: FAST.password } },
      );
      assertEquals(r.code, 0, r.err);
      const a = await open(out, { password: FAST.password });
      assert(a.header.encryption, mode);
      assertEquals(await a.read("disk", 0, img.length), img, mode);
      a.close();
    }
    const r = await hexz(["commit", `${dir}/base.hxz`, `${dir}/base.hxo`, `${dir}/x.hxz`, "-q"]);
    assertEquals(r.code, 1);
    assertEquals(
      r.err,
      "hexz: base.hxz: archive is encrypted: give the password (HEXZ_PASSWORD or --password-file)\n"
        .replace("base.hxz", `${dir}/base.hxz`),
    );
  } finally {
    await done();
  }
});
