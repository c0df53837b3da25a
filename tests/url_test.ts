/**
 * hexz run from a URL, the way users run it from a Git host: the repository's files are served
 * as plain text by a local HTTP server and `deno run` fetches cli.ts and everything it loads
 * from there. No import map applies then, so every package the code loads must be named by a
 * complete specifier; encryption (Argon2id from hash-wasm) and dictionaries (zstd-codec) are the
 * lazily loaded ones. Only --allow-read and --allow-write are granted.
 */
import { assertEquals, assertMatch } from "./_assert.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Serves the repository's files as text/plain (as raw Git hosts do), nothing else. */
function serveRepo() {
  return Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.includes("..")) return new Response("no", { status: 403 });
    try {
      return new Response(await Deno.readFile(ROOT + path.slice(1)), {
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

/** The npm package cache of this Deno, shared into a fresh DENO_DIR (no download twice). */
async function npmCache(): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  return `${JSON.parse(new TextDecoder().decode(r.stdout)).denoDir}/npm`;
}

Deno.test("hexz runs from a URL with no import map: encryption and dictionaries too", async () => {
  const [dir, done] = await tempDir();
  const server = serveRepo();
  try {
    // A DENO_DIR of its own: the modules are fetched from this server, not found in a cache.
    await Deno.mkdir(`${dir}/deno`);
    await Deno.symlink(await npmCache(), `${dir}/deno/npm`).catch(() => {});
    const url = `http://127.0.0.1:${server.addr.port}/cli.ts`;
    const hexz = async (...args: string[]) => {
      const p = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-q", `--allow-read=${dir}`, `--allow-write=${dir}`, url, ...args],
        // Without --allow-env the password in the environment is not read (nor asked for).
        env: { DENO_DIR: `${dir}/deno`, NO_COLOR: "1", HEXZ_PASSWORD: "correct horse" },
        stdin: "null",
      }).output();
      return { code: p.code, err: new TextDecoder().decode(p.stderr) };
    };
    const disk = pseudoRandom(300_000, 5);
    const text = new TextEncoder().encode(
      Array.from({ length: 30_000 }, (_, i) => `line ${i % 977} of a log, status ${i % 7}`)
        .join("\n"),
    );
    await Deno.writeFile(`${dir}/disk.img`, disk);
    await Deno.writeFile(`${dir}/text.img`, text);
    await Deno.writeTextFile(`${dir}/pw`, "correct horse\n");

    let r = await hexz(
      "pack",
      `${dir}/e.hxz`,
      "--disk",
      `${dir}/disk.img`,
      "--encrypt",
      "--password-file",
      `${dir}/pw`,
      "-q",
    );
    assertEquals([r.code, r.err], [0, ""]);
    r = await hexz("extract", `${dir}/e.hxz`, `${dir}/e.img`, "--password-file", `${dir}/pw`, "-q");
    assertEquals([r.code, r.err], [0, ""]);
    assertEquals(await Deno.readFile(`${dir}/e.img`), disk);
    r = await hexz("extract", `${dir}/e.hxz`, `${dir}/f.img`, "-q");
    assertEquals(r.code, 1);
    assertMatch(
      r.err,
      /^hexz: \S+e\.hxz: archive is encrypted: give the password \(HEXZ_PASSWORD or --password-file\)\n$/,
    );

    // Workers load from the same URL.
    r = await hexz("pack", `${dir}/w.hxz`, "--disk", `${dir}/disk.img`, "--workers", "2", "-q");
    assertEquals([r.code, r.err], [0, ""]);
    r = await hexz("extract", `${dir}/w.hxz`, `${dir}/w.img`, "--workers", "2", "-q");
    assertEquals([r.code, r.err], [0, ""]);
    assertEquals(await Deno.readFile(`${dir}/w.img`), disk);

    r = await hexz(
      "pack",
      `${dir}/d.hxz`,
      "--disk",
      `${dir}/text.img`,
      "--compression",
      "zstd",
      "--block-size",
      "4K",
      "--train-dict",
    );
    assertEquals(r.code, 0, r.err);
    assertMatch(r.err, /d\.hxz: .* => /);
    r = await hexz("extract", `${dir}/d.hxz`, `${dir}/d.img`, "-q");
    assertEquals([r.code, r.err], [0, ""]);
    assertEquals(await Deno.readFile(`${dir}/d.img`), text);
  } finally {
    await server.shutdown();
    await done();
  }
});
