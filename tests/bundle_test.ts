/**
 * The single-file bundle (`deno task bundle`): built with esbuild, it packs (one thread, same
 * archive as the modular build), reads, checks and extracts, dictionaries included.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { hexz } from "./_cli.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function run(args: string[]) {
  const p = await new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const d = new TextDecoder();
  return { code: p.code, stdout: p.stdout, out: d.decode(p.stdout), err: d.decode(p.stderr) };
}

Deno.test("the single-file bundle packs, reads and extracts like the modular build", async () => {
  const [dir, done] = await tempDir();
  try {
    let r = await run([
      "run",
      "-q",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      "--allow-env",
      `${ROOT}bundle.ts`,
      `${dir}/hexz.js`,
    ]);
    assertEquals(r.code, 0, r.err);
    const disk = pseudoRandom(1 << 20, 31);
    disk.fill(0, 300_000, 600_000);
    const text = new TextEncoder().encode(
      "a line of log text, repeated with numbers 12345\n".repeat(40_000),
    );
    await Deno.writeFile(`${dir}/disk.img`, disk);
    await Deno.writeFile(`${dir}/text.img`, text);
    const js = ["run", "-q", "--allow-read", "--allow-write", "--allow-env", `${dir}/hexz.js`];
    r = await run([...js, "pack", `${dir}/b.hxz`, "--disk", `${dir}/disk.img`, "-q"]);
    assertEquals(r.code, 0, r.err);
    // The modular build (which uses workers) writes the same archive, header aside.
    const m = await hexz(["pack", `${dir}/m.hxz`, "--disk", `${dir}/disk.img`, "-q"]);
    assertEquals(m.code, 0, m.err);
    const b = await Deno.readFile(`${dir}/b.hxz`), mm = await Deno.readFile(`${dir}/m.hxz`);
    assertEquals(b.subarray(4096), mm.subarray(4096));
    r = await run([...js, "cat", `${dir}/b.hxz`, "--offset", "1000", "--length", "100"]);
    assertEquals(r.stdout, disk.subarray(1000, 1100));
    r = await run([...js, "extract", `${dir}/b.hxz`, `${dir}/out.img`, "-q"]);
    assertEquals(r.code, 0, r.err);
    assertEquals(await Deno.readFile(`${dir}/out.img`), disk);
    r = await run([
      ...js,
      "pack",
      `${dir}/d.hxz`,
      "--disk",
      `${dir}/text.img`,
      "--compression",
      "zstd",
      "--block-size",
      "4K",
      "--train-dict",
      "-q",
    ]);
    assertEquals(r.code, 0, r.err);
    r = await run([...js, "check", `${dir}/d.hxz`]);
    assertEquals(r.code, 0, r.err);
    r = await run([...js, "inspect", `${dir}/d.hxz`]);
    assertMatch(r.out, /features: dictionary/);
    r = await run([...js, "pack", `${dir}/x.hxz`]);
    assertEquals(r.code, 2);
    assert(r.err.trim().split("\n").length === 1, r.err);
  } finally {
    await done();
  }
});
