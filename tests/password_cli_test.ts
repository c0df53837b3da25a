/**
 * Every command that reads an encrypted archive takes its password the same way: from
 * `--password-file` or HEXZ_PASSWORD (cli/password.ts). Without one, what needs the contents
 * fails with one line naming the archive, before anything is done.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { build, mountArchive, pack } from "../mod.ts";
import type { HexzError } from "../mod.ts";
import { openOverlay } from "../core/overlay/overlay.ts";
import { open } from "../mod.ts";
import { fileTable } from "../core/read/files.ts";
import { hexz } from "./_cli.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";

const FAST = {
  password: "correct horse",
  kdf: { name: "argon2id" as const, memoryKiB: 256, iterations: 1, parallelism: 1 },
};
const LOCKED = "archive is encrypted: give the password (HEXZ_PASSWORD or --password-file)";

/** An encrypted directory archive t.hxz (a.bin, b.bin), an overlay changing b.bin, pw file. */
async function setUp(dir: string) {
  await Deno.mkdir(`${dir}/src`);
  await Deno.writeFile(`${dir}/src/a.bin`, pseudoRandom(50_000, 1));
  await Deno.writeFile(`${dir}/src/b.bin`, pseudoRandom(50_000, 2));
  await build({ source: `${dir}/src`, output: `${dir}/t.hxz`, encrypt: FAST });
  await Deno.writeTextFile(`${dir}/pw`, FAST.password + "\n");
  const base = await open(`${dir}/t.hxz`, { password: FAST.password });
  const b = (await fileTable(base))!.find((e) => e.path === "b.bin")!;
  const ov = await openOverlay(`${dir}/t.hxo`, base, { create: true });
  await ov.write("disk", b.offset + 20_000, new Uint8Array([1, 2, 3]));
  await ov.flush();
  ov.close();
  base.close();
}

Deno.test("diff and overlay --files take the password of encrypted archives", async () => {
  const [dir, done] = await tempDir();
  try {
    await setUp(dir);
    const t = `${dir}/t.hxz`;
    for (const args of [["diff", t, t], ["overlay", `${dir}/t.hxo`, "--base", t, "--files"]]) {
      const locked = await hexz(args);
      assertEquals([locked.code, locked.err], [1, `hexz: ${t}: ${LOCKED}\n`], args[0]);
      const byFile = await hexz([...args, "--password-file", `${dir}/pw`]);
      assertEquals(byFile.code, 0, byFile.err);
      const byEnv = await hexz(args, { env: { HEXZ_PASSWORD: FAST.password } });
      assertEquals(byEnv.out, byFile.out, args[0]);
    }
    const files = await hexz(["overlay", `${dir}/t.hxo`, "--base", t, "--files", "--json"], {
      env: { HEXZ_PASSWORD: FAST.password },
    });
    assertEquals(JSON.parse(files.out).files.map((f: { path: string }) => f.path), ["b.bin"]);
    const diff = await hexz(["diff", t, t, "--json"], { env: { HEXZ_PASSWORD: FAST.password } });
    assertEquals(JSON.parse(diff.out).changedFraction, 0);
    assertEquals(diff.err, "");
    // The same tree unencrypted shares no block hash with it, and diff says why.
    await build({ source: `${dir}/src`, output: `${dir}/plain.hxz` });
    const apart = await hexz(["diff", t, `${dir}/plain.hxz`], {
      env: { HEXZ_PASSWORD: FAST.password },
    });
    assertEquals(apart.code, 0, apart.err);
    assertMatch(apart.out, /^shared: 0 blocks, 0 B$/m);
    assertEquals(
      apart.err,
      "hexz: note: the archives are not encrypted in one chain; no block can match\n",
    );
    // What needs only the overlay and the base's header still needs no password.
    // (and --base defaults to the archive the overlay is named after, t.hxz for t.hxo).
    const plain = await hexz(["overlay", `${dir}/t.hxo`]);
    assertEquals(plain.code, 0, plain.err);
    assertMatch(plain.out, new RegExp(`^base: ${t} `, "m"));
    await Deno.copyFile(`${dir}/t.hxo`, `${dir}/t.log`);
    const unnamed = await hexz(["overlay", `${dir}/t.log`]);
    assertEquals(unnamed.code, 2);
    assertEquals(unnamed.err, `hexz: ${dir}/t.log: give --base (the archive it was written on)\n`);
  } finally {
    await done();
  }
});

Deno.test("mount refuses an encrypted archive without its password, before mounting", async () => {
  const [dir, done] = await tempDir();
  try {
    await Deno.writeFile(`${dir}/d.img`, pseudoRandom(10_000, 3));
    await pack({ output: `${dir}/e.hxz`, disk: `${dir}/d.img`, encrypt: FAST });
    await Deno.mkdir(`${dir}/mnt`);
    let e: unknown;
    try {
      await mountArchive(`${dir}/e.hxz`, { mountpoint: `${dir}/mnt` });
    } catch (err) {
      e = err;
    }
    assertEquals((e as HexzError)?.code, "password");
    for (const daemon of [[], ["--daemon"]]) {
      const r = await hexz(["mount", `${dir}/e.hxz`, `${dir}/mnt`, ...daemon], {
        perms: ["--allow-all"],
      });
      assertEquals([r.code, r.err], [1, `hexz: ${dir}/e.hxz: ${LOCKED}\n`], daemon.join());
    }
  } finally {
    await done();
  }
});

Deno.test(needs(["fuse", "cmp"], {
  name: "mount serves an encrypted archive with --password-file or HEXZ_PASSWORD",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      await Deno.writeFile(`${dir}/d.img`, pseudoRandom(100_000, 4));
      await pack({ output: `${dir}/e.hxz`, disk: `${dir}/d.img`, encrypt: FAST });
      await Deno.writeTextFile(`${dir}/pw`, FAST.password);
      await Deno.mkdir(`${dir}/mnt`);
      const ways: [string[], Record<string, string>][] = [
        [["--password-file", `${dir}/pw`], {}],
        [[], { HEXZ_PASSWORD: FAST.password }],
      ];
      for (const [flags, env] of ways) {
        const r = await hexz(["mount", `${dir}/e.hxz`, `${dir}/mnt`, "--daemon", ...flags], {
          perms: ["--allow-all"],
          env,
        });
        assertEquals(r.code, 0, r.err);
        try {
          assertMatch(r.out, /^mounted /);
          const cmp = await new Deno.Command("cmp", { args: [`${dir}/mnt/disk`, `${dir}/d.img`] })
            .output();
          assert(cmp.success, new TextDecoder().decode(cmp.stdout));
        } finally {
          const u = await hexz(["unmount", `${dir}/mnt`], { perms: ["--allow-all"] });
          assertEquals(u.code, 0, u.err);
        }
      }
    } finally {
      await done();
    }
  },
}));

Deno.test("writes to an encrypted archive need its password; without it nothing is written", async () => {
  const [dir, done] = await tempDir();
  try {
    await Deno.writeFile(`${dir}/d.img`, pseudoRandom(10_000, 5));
    await pack({ output: `${dir}/e.hxz`, disk: `${dir}/d.img`, encrypt: FAST });
    const locked = await open(`${dir}/e.hxz`);
    let e: unknown;
    try {
      await openOverlay(`${dir}/lib.hxo`, locked, { create: true });
    } catch (err) {
      e = err;
    }
    locked.close();
    assertEquals((e as HexzError)?.code, "password");
    await Deno.mkdir(`${dir}/mnt`);
    for (
      const args of [
        ["mount", `${dir}/e.hxz`, `${dir}/mnt`, "--rw"],
        ["serve", `${dir}/e.hxz`, "--nbd", "--rw", "--socket", `${dir}/s.sock`],
      ]
    ) {
      const r = await hexz(args, { perms: ["--allow-all"] });
      assertEquals([r.code, r.err], [1, `hexz: ${dir}/e.hxz: ${LOCKED}\n`], args[0]);
    }
    // No overlay was left behind.
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "d.img",
      "e.hxz",
      "mnt",
    ]);
    // With it, the overlay is encrypted (version 2): the library opens it writable.
    const base = await open(`${dir}/e.hxz`, { password: FAST.password });
    const ov = await openOverlay(`${dir}/lib.hxo`, base, { create: true });
    assert(ov.encrypted, "the overlay of an encrypted archive is encrypted");
    ov.close();
    base.close();
  } finally {
    await done();
  }
});

Deno.test(needs(["fuse", "cmp", "dd"], {
  name: "mount --rw of an encrypted archive keeps the writes encrypted, and reads them back",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      const img = pseudoRandom(100_000, 6);
      await Deno.writeFile(`${dir}/d.img`, img);
      await pack({ output: `${dir}/e.hxz`, disk: `${dir}/d.img`, encrypt: FAST });
      await Deno.writeTextFile(`${dir}/pw`, FAST.password);
      const secret = pseudoRandom(9000, 7);
      await Deno.writeFile(`${dir}/secret`, secret);
      img.set(secret, 30_000);
      await Deno.writeFile(`${dir}/want.img`, img);
      await Deno.mkdir(`${dir}/mnt`);
      const mount = async (flags: string[]) => {
        const r = await hexz(
          [
            "mount",
            `${dir}/e.hxz`,
            `${dir}/mnt`,
            "--daemon",
            "--password-file",
            `${dir}/pw`,
            ...flags,
          ],
          { perms: ["--allow-all"] },
        );
        assertEquals(r.code, 0, r.err);
      };
      const unmount = async () => {
        const u = await hexz(["unmount", `${dir}/mnt`], { perms: ["--allow-all"] });
        assertEquals(u.code, 0, u.err);
      };
      await mount(["--rw"]);
      try {
        const dd = await new Deno.Command("dd", {
          args: [`if=${dir}/secret`, `of=${dir}/mnt/disk`, "bs=1000", "seek=30", "conv=notrunc"],
          stderr: "piped",
        }).output();
        assert(dd.success, new TextDecoder().decode(dd.stderr));
      } finally {
        await unmount();
      }
      const ov = await Deno.readFile(`${dir}/e.hxo`);
      assertEquals(new DataView(ov.buffer).getUint16(4, true), 2, "an encrypted overlay");
      const hay = new TextDecoder("latin1").decode(ov);
      assert(!hay.includes(new TextDecoder("latin1").decode(secret.subarray(0, 64))), "clear");
      await mount(["--overlay", `${dir}/e.hxo`]);
      try {
        const cmp = await new Deno.Command("cmp", { args: [`${dir}/mnt/disk`, `${dir}/want.img`] })
          .output();
        assert(cmp.success, new TextDecoder().decode(cmp.stdout));
      } finally {
        await unmount();
      }
    } finally {
      await done();
    }
  },
}));
