import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { assertBytesEqual } from "./_archive.ts";
import { hexz } from "./_cli.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";
import { VERSION } from "../core/version.ts";
import { osReason } from "../core/errors.ts";
import { type HexzError, pack } from "../mod.ts";

async function image(dir: string): Promise<Uint8Array> {
  const data = new Uint8Array(3 * 1024 * 1024 + 123);
  data.set(pseudoRandom(512 * 1024, 31), 100_000);
  data.set(new TextEncoder().encode("boot sector text ".repeat(1000)), 2_000_000);
  await Deno.writeFile(`${dir}/disk.img`, data);
  await Deno.writeFile(`${dir}/mem.bin`, pseudoRandom(200_000, 32));
  return data;
}

function oneLine(err: string) {
  assertEquals(err.trim().split("\n").length, 1, `expected one line on stderr, got:\n${err}`);
  assert(!/\n\s+at /.test(err), "stack trace on stderr");
  assertMatch(err, /^hexz: /);
}

Deno.test("cli pack, inspect, cat, extract and check work end to end", async () => {
  const [dir, done] = await tempDir();
  try {
    const data = await image(dir);
    let r = await hexz([
      "pack",
      `${dir}/a.hxz`,
      "--disk",
      `${dir}/disk.img`,
      "--memory",
      `${dir}/mem.bin`,
      "--compression",
      "zstd",
      "--cdc",
    ]);
    assertEquals(r.code, 0, r.err);
    assertMatch(r.err, /a\.hxz: 3\.\d+ MiB => /);
    r = await hexz(["inspect", `${dir}/a.hxz`, "--json"]);
    assertEquals(r.code, 0, r.err);
    const info = JSON.parse(r.out);
    assertEquals(info.streams[0].logicalSize, data.length);
    assertEquals(info.streams[1].logicalSize, 200_000);
    assertEquals(info.chunking.mode, "fastcdc");
    r = await hexz(["inspect", `${dir}/a.hxz`]);
    assertMatch(r.out, /chunking: FastCDC min 16 KiB, avg 64 KiB, max 128 KiB/);
    r = await hexz(["cat", `${dir}/a.hxz`, "--offset", "100000", "--length", "4K"]);
    assertEquals(r.code, 0, r.err);
    assertBytesEqual(r.stdout, data.subarray(100_000, 100_000 + 4096), "cat");
    r = await hexz(["extract", `${dir}/a.hxz`, `${dir}/out.img`, "--silent"]);
    assertEquals([r.code, r.err], [0, ""]);
    assertBytesEqual(await Deno.readFile(`${dir}/out.img`), data, "extract");
    for (const w of ["1", "3"]) {
      r = await hexz(["extract", `${dir}/a.hxz`, `${dir}/w.img`, "-q", "-f", "--workers", w]);
      assertEquals([r.code, r.err], [0, ""]);
      assertBytesEqual(await Deno.readFile(`${dir}/w.img`), data, `extract --workers ${w}`);
    }
    r = await hexz(["extract", `${dir}/a.hxz`, `${dir}/w.img`, "-f", "--workers", "0"]);
    assertEquals(r.code, 2);
    assertMatch(r.err, /--workers must be 1\.\.256/);
    r = await hexz(["extract", `${dir}/a.hxz`, `${dir}/mem.out`, "--memory"]);
    assertBytesEqual(await Deno.readFile(`${dir}/mem.out`), await Deno.readFile(`${dir}/mem.bin`));
    r = await hexz(["check", `${dir}/a.hxz`]);
    assertEquals(r.code, 0, r.err);
    assertMatch(r.err, /ok \(\d+ blocks/);
  } finally {
    await done();
  }
});

Deno.test("inspect and pack of an empty input give no ratio: null in JSON, - in text", async () => {
  const [dir, done] = await tempDir();
  try {
    await Deno.writeFile(`${dir}/empty.img`, new Uint8Array(0));
    let r = await hexz(["pack", `${dir}/e.hxz`, "--disk", `${dir}/empty.img`]);
    assertEquals(r.code, 0, r.err);
    assertMatch(r.err, /e\.hxz: 0 B => .* \(-\)$/m);
    r = await hexz(["inspect", `${dir}/e.hxz`, "--json"]);
    assertEquals(r.code, 0, r.err);
    const info = JSON.parse(r.out);
    assertEquals([info.compressionRatio, info.dedupRatio], [null, null]);
    assertEquals(info.streams.map((s: { ratio: unknown }) => s.ratio), [null, null]);
    r = await hexz(["inspect", `${dir}/e.hxz`]);
    assertEquals(r.code, 0, r.err);
    assertMatch(r.out, /^compression ratio: -$/m);
    assertMatch(r.out, /^dedup ratio: -$/m);
    // Only zeros: nothing stored, so no dedup ratio; the compression ratio is a real one.
    await Deno.writeFile(`${dir}/zero.img`, new Uint8Array(256 * 1024));
    r = await hexz(["pack", `${dir}/z.hxz`, "--disk", `${dir}/zero.img`, "-q"]);
    assertEquals(r.code, 0, r.err);
    r = await hexz(["inspect", `${dir}/z.hxz`, "--json"]);
    const zero = JSON.parse(r.out);
    assert(zero.compressionRatio > 1, `compression ratio ${zero.compressionRatio}`);
    assertEquals([zero.dedupRatio, zero.streams[0].ratio], [null, null]);
    r = await hexz(["inspect", `${dir}/z.hxz`]);
    assertMatch(r.out, /^ {2}stored: 0 B \(-\)$/m);
    assertMatch(r.out, /^compression ratio: \d+\.\d\dx$/m);
    assertMatch(r.out, /^dedup ratio: -$/m);
  } finally {
    await done();
  }
});

Deno.test("cli usage errors are one line with exit code 2", async () => {
  const [dir, done] = await tempDir();
  try {
    await image(dir);
    const d = `${dir}/disk.img`;
    const cases: [string[], RegExp][] = [
      [["pack", `${dir}/x.hxz`], /nothing to pack/],
      [
        ["pack", `${dir}/x.hxz`, "--disk", d, "--block-size", "512"],
        /^hexz: --block-size 512: must be a power of two between 1K and 16M\n$/,
      ],
      [["pack", `${dir}/x.hxz`, "--disk", d, "--block-size", "32M"], /--block-size 32M: must be/],
      [["pack", `${dir}/x.hxz`, "--disk", d, "--block-size", "3K"], /--block-size 3K: must be/],
      [["commit", "a.hxz", "o.hxo", "b.hxz", "--flatten", "--block-size", "3K"], /3K: must be/],
      [["build", dir, `${dir}/x.hxz`, "--block-size", "3K"], /--block-size 3K: must be/],
      // Options that other options would make pack ignore are refused, not ignored.
      [
        ["pack", `${dir}/x.hxz`, "--disk", d, "--compression", "none", "--level", "5"],
        /^hexz: --level: --compression none has no levels\n$/,
      ],
      [
        ["build", dir, `${dir}/x.hxz`, "--compression", "none", "--level", "5"],
        /--compression none has no levels/,
      ],
      [
        ["commit", "a.hxz", "o.hxo", "b.hxz", "--compression", "none", "--level", "5"],
        /--compression none has no levels/,
      ],
      [["pack", `${dir}/x.hxz`, "--disk", d, "--min-chunk", "8K"], /--min-chunk goes with --cdc/],
      [["pack", `${dir}/x.hxz`, "--disk", d, "--avg-chunk", "32K"], /--avg-chunk goes with --cdc/],
      [["pack", `${dir}/x.hxz`, "--disk", d, "--max-chunk", "1M"], /--max-chunk goes with --cdc/],
      [["pack", `${dir}/x.hxz`, "--disk", d, "--cdc", "--block-size", "16K"], /with --cdc/],
      [["build", dir, `${dir}/x.hxz`, "--cdc", "--block-size", "16K"], /with --cdc/],
      [
        ["pack", `${dir}/x.hxz`, "--disk", d, "--dict-size", "50K"],
        /--dict-size goes with --train-dict/,
      ],
      [
        ["pack", `${dir}/x.hxz`, "--disk", d, "--cdc", "--avg-chunk", "48K"],
        /power of two \(got 48 KiB\)/,
      ],
      [
        ["pack", `${dir}/x.hxz`, "--disk", d, "--cdc", "--min-chunk", "64K", "--avg-chunk", "64K"],
        /min/,
      ],
      [["pack", `${dir}/x.hxz`, "--disk", d, "--compression", "brotli"], /brotli/],
      [["pack", `${dir}/x.hxz`, "--disk", d, "--level", "99", "--compression", "zstd"], /level/],
      [["pack", `${dir}/x.hxz`, "--disk", d, "--bogus"], /unknown option '--bogus'/],
      [["frobnicate"], /unknown command/],
      [["cat", `${dir}/x.hxz`, "--offset", "lots"], /--offset: 'lots' is not a size/],
      [["extract", `${dir}/x.hxz`, "-"], /standard output: .*'hexz cat'/],
      [["pack", "-", "--disk", d], /cannot write to standard output/],
      [["commit", "a.hxz", "o.hxo", "b.hxz", "--block-size", "4K"], /--block-size needs --flatten/],
    ];
    for (const [args, re] of cases) {
      const r = await hexz(args);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.err}`);
      oneLine(r.err);
      assertMatch(r.err, re);
    }
    // Nothing half-written was left behind.
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assertEquals(names, ["disk.img", "mem.bin"]);
  } finally {
    await done();
  }
});

Deno.test("cli failures are one line with exit code 1 and name the problem", async () => {
  const [dir, done] = await tempDir();
  try {
    await image(dir);
    let r = await hexz(["pack", `${dir}/a.hxz`, "--disk", `${dir}/missing.img`]);
    assertEquals(r.code, 1);
    oneLine(r.err);
    assertMatch(r.err, /missing\.img: no such file/);
    r = await hexz(["inspect", `${dir}/disk.img`]);
    assertEquals(r.code, 1);
    assertMatch(r.err, /not a hexz archive/);
    r = await hexz(["inspect", dir]);
    assertEquals([r.code, r.err], [1, `hexz: ${dir}: is a directory, not an archive\n`]);
    r = await hexz(["pack", `${dir}/a.hxz`, "--disk", `${dir}/disk.img`, "-q"]);
    assertEquals([r.code, r.err], [0, ""]);
    // No clobbering without --force; --force replaces.
    r = await hexz(["pack", `${dir}/a.hxz`, "--disk", `${dir}/mem.bin`, "-q"]);
    assertEquals(r.code, 1);
    assertMatch(r.err, /already exists \(use --force/);
    r = await hexz(["pack", `${dir}/a.hxz`, "--disk", `${dir}/mem.bin`, "-q", "--force"]);
    assertEquals(r.code, 0, r.err);
    // Damage a block: check names it and exits 1.
    const bytes = await Deno.readFile(`${dir}/a.hxz`);
    bytes[4096 + 10] ^= 1;
    await Deno.writeFile(`${dir}/bad.hxz`, bytes);
    r = await hexz(["check", `${dir}/bad.hxz`]);
    assertEquals(r.code, 1);
    oneLine(r.err);
    assertMatch(r.err, /^hexz: \S+bad\.hxz: disk block 0 \(offset 0\)/);
    r = await hexz(["cat", `${dir}/a.hxz`, "--offset", "199990", "--length", "20"]);
    assertEquals(r.code, 2);
    assertMatch(r.err, /outside the disk stream/);
    // Checked before anything is written, also for ranges larger than one 4 MiB piece.
    r = await hexz(["cat", `${dir}/a.hxz`, "--length", "15M"]);
    assertEquals([r.code, r.stdout.length], [2, 0]);
    assertMatch(r.err, /bytes 0\.\.15728640 are outside the disk stream \(\d+ bytes\)/);
    // A stream the archive does not have is an error, not an empty success.
    for (const range of [[], ["--length", "0"]]) {
      r = await hexz(["cat", `${dir}/a.hxz`, "--memory", ...range]);
      assertEquals([r.code, r.stdout.length], [1, 0]);
      assertEquals(r.err, `hexz: ${dir}/a.hxz: has no memory stream (packed without --memory)\n`);
    }
    // Counts agree with their nouns.
    r = await hexz(["check", `${dir}/a.hxz`]);
    assertMatch(r.err, /\(4 blocks, 1 page, 0 sections, /);
  } finally {
    await done();
  }
});

Deno.test("cli help, version and misspellings", async () => {
  let r = await hexz(["--help"]);
  assertEquals(r.code, 0, r.err);
  for (const cmd of ["pack", "extract", "serve", "mount", "unmount", "verify"]) {
    assertMatch(r.out, new RegExp(`\\n  ${cmd} +\\S`), cmd);
  }
  const help = r.out;
  assertEquals((await hexz(["help"])).out, help);
  r = await hexz(["help", "extract"]);
  assertMatch(r.out, /^Usage: hexz extract \[options\] <archive> <output> \[paths\.\.\.\]\n/);
  assertMatch(r.out, /\n {2}-f, --force +overwrite an existing output\n/);
  r = await hexz(["--version"]);
  assertEquals([r.code, r.out], [0, `hexz ${VERSION}\n`]);
  const cases: [string[], RegExp][] = [
    [[], /^hexz: no command given \(see hexz --help\)\n$/],
    [["extrct", "a", "b"], /unknown command 'extrct' \(did you mean extract\?\)/],
    [["extract", "a", "b", "--forse"], /unknown option '--forse' \(did you mean --force\?\)/],
    [["pack", "x.hxz", "--compression", "zsdt"], /'zsdt' is not one of lz4, zstd, none/],
    [["extract", "a"], /missing required argument 'output'/],
    [["--silent", "pack"], /unknown option '--silent' \(options go after the command/],
  ];
  for (const [args, re] of cases) {
    r = await hexz(args);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.err}`);
    oneLine(r.err);
    assertMatch(r.err, re);
    assertEquals(r.out, "");
  }
});

Deno.test("cli --help shows an example for every command", async () => {
  const list = (await hexz(["--help"])).out.split("Commands:\n")[1];
  const commands = [...list.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]);
  assertEquals(commands.length, 23, list);
  for (const cmd of commands) {
    const r = await hexz([cmd, "--help"]);
    assertEquals(r.code, 0, r.err);
    assertMatch(r.out, /Example/, cmd);
  }
});

Deno.test("os errors are reported with the path once and the plain reason", async () => {
  const { openSync } = await import("node:fs");
  const reasons: string[] = [];
  for (
    const f of [
      () => Deno.openSync("/nonexistent/x"),
      () => openSync("/nonexistent/x", "r"),
      () => Deno.renameSync("/nonexistent/a", "/nonexistent/b"),
      () => Deno.readDirSync("/etc/hostname").next(),
    ]
  ) {
    try {
      f();
    } catch (e) {
      reasons.push(osReason(e));
    }
  }
  assertEquals(reasons, [
    "no such file or directory",
    "no such file or directory",
    "no such file or directory",
    "not a directory",
  ]);
  assertEquals(osReason(new Error("not an os error: kept")), "not an os error: kept");
  // Through the command line: lineage of a path that is not a directory.
  const [dir, done] = await tempDir();
  try {
    await Deno.writeFile(`${dir}/f`, new Uint8Array(1));
    const r = await hexz(["ls", `${dir}/f`]);
    assertEquals(r.code, 1, r.err);
    assertEquals(r.err, `hexz: ${dir}/f: not a directory (for one archive: hexz inspect)\n`);
  } finally {
    await done();
  }
});

Deno.test("library pack names sizes it refuses with their units", async () => {
  const [dir, done] = await tempDir();
  try {
    await image(dir);
    const cases: [Partial<Parameters<typeof pack>[0]>, RegExp][] = [
      [{ blockSize: 512 }, /^block size must be between 1 KiB and 16 MiB, got 512 B$/],
      [{ blockSize: 32 << 20 }, /got 32 MiB$/],
      [{ cdc: { min: 16384, avg: 3072, max: 131072 } }, /got min 16 KiB, avg 3 KiB, max 128 KiB/],
    ];
    for (const [opts, re] of cases) {
      const e = await assertRejects(() =>
        pack({ ...opts, output: `${dir}/x.hxz`, disk: `${dir}/disk.img` })
      );
      assertEquals((e as HexzError).code, "usage");
      assertMatch((e as Error).message, re);
    }
  } finally {
    await done();
  }
});

Deno.test("an archive named by a device, FIFO or directory: one line saying what it is", async () => {
  const [dir, done] = await tempDir();
  try {
    const cases: [string, RegExp][] = [
      [
        "/dev/null",
        /^hexz: \/dev\/null: a character device, not an archive \(archives are regular files\)\n$/,
      ],
      [dir, /^hexz: .*: is a directory, not an archive\n$/],
    ];
    if ((await new Deno.Command("mkfifo", { args: [`${dir}/f`] }).output()).success) {
      cases.push([`${dir}/f`, /^hexz: .*\/f: a FIFO, not an archive/]);
    }
    for (const [path, re] of cases) {
      const r = await hexz(["inspect", path]);
      assertEquals(r.code, 1, path);
      assertMatch(r.err, re);
    }
    // An overlay named by a FIFO or a directory: refused, not waited on.
    await Deno.writeFile(`${dir}/d.img`, pseudoRandom(10_000, 1));
    await pack({ output: `${dir}/d.hxz`, disk: `${dir}/d.img` });
    const overlays: [string, RegExp][] = [[dir, /: a directory, not a hexz overlay\n$/]];
    if (cases.length === 3) {
      overlays.push([`${dir}/f`, /f: not a regular file, not a hexz overlay\n$/]);
    }
    for (const [path, re] of overlays) {
      const r = await hexz(["overlay", path, "--base", `${dir}/d.hxz`]);
      assertEquals(r.code, 1, path);
      assertMatch(r.err, re);
    }
  } finally {
    await done();
  }
});
