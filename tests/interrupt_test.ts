/**
 * An interrupted command (SIGINT, SIGTERM, SIGHUP) deletes the temporary output it was
 * writing and exits with 128 + the signal's number; nothing half-written stays behind.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { packBytes, withOpen } from "./_archive.ts";
import { fileSource } from "../core/io/source.ts";
import { type ArchiveObject, objectResponse } from "../serve/objects.ts";
import { KIND } from "../core/format/constants.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** Starts the CLI; its stderr is collected. */
function start(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-q",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-net",
      CLI,
      ...args,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const err = new Response(child.stderr).text();
  return { child, err };
}

/** Waits until `dir` holds a name containing `part` (the command has started writing). */
async function appears(dir: string, part: string, child: Deno.ChildProcess): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  for (let i = 0; i < 3000; i++) {
    if ([...Deno.readDirSync(dir)].some((e) => e.name.includes(part))) return;
    if (exited) throw new Error(`the command ended before writing anything named *${part}*`);
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`nothing named *${part}* appeared in ${dir}`);
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

/** Bytes that zstd level 19 compresses slowly: varied, but far from random. */
function slowInput(size: number): Uint8Array {
  const b = new Uint8Array(size);
  let x = 12345;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0x3f;
  }
  return b;
}

for (
  const [signal, code, workers] of [["SIGTERM", 143, "1"], ["SIGINT", 130, "2"]] as const
) {
  Deno.test(`pack interrupted by ${signal} (${workers} worker(s)) leaves no temporary file`, async () => {
    const dir = await Deno.makeTempDir();
    const out = await Deno.makeTempDir();
    try {
      await Deno.writeFile(`${dir}/in.img`, slowInput(48 << 20));
      const { child, err } = start([
        "pack",
        `${out}/a.hxz`,
        "--disk",
        `${dir}/in.img`,
        "--compression",
        "zstd",
        "--level",
        "19",
        "--workers",
        workers,
        "-q",
      ]);
      await appears(out, ".tmp-", child);
      const t0 = Date.now();
      child.kill(signal);
      const status = await child.status;
      assertEquals(status.code, code, await err);
      // The whole pack takes tens of seconds: the signal must not wait for it.
      assert(Date.now() - t0 < 5000, `exited ${Date.now() - t0} ms after the signal`);
      assertMatch(await err, /^hexz: interrupted\n$/);
      assertEquals(names(out), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(out, { recursive: true });
    }
  });
}

/**
 * Serves `path` over HTTP, holding back every request that reaches the byte at `stallAt`
 * until `release` is called: a command reading it is stuck mid-way, deterministically.
 */
function stallingServer(path: string, stallAt: number) {
  const held: (() => void)[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const range = /bytes=(\d+)-(\d*)/.exec(req.headers.get("range") ?? "");
    if (range && +range[1] <= stallAt && (range[2] === "" || +range[2] >= stallAt)) {
      await new Promise<void>((r) => held.push(r));
    }
    const src = await fileSource(path);
    const obj: ArchiveObject = {
      key: path,
      size: src.size,
      etag: '"fixed"',
      lastModified: new Date(0),
      read: (o, n) => src.read(o, n),
    };
    try {
      const res = await objectResponse(req, obj);
      return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
    } finally {
      src.close();
    }
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/a.hxz`,
    async close() {
      held.forEach((r) => r());
      await server.shutdown();
    },
  };
}

/** Where the first stored block of the disk stream 4 MiB or more into the archive lies: far
 * beyond what opening the archive reads ahead. */
async function blockAfter4M(path: string): Promise<number> {
  return await withOpen(path, async (a) => {
    for await (const b of a.blocks("disk")) {
      if (b.entry.kind !== KIND.zero && b.entry.location >= 4 << 20) return b.entry.location;
    }
    throw new Error("no stored block 4 MiB into the archive");
  });
}

Deno.test("extract interrupted by SIGHUP while its source stalls leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  const out = await Deno.makeTempDir();
  const data = slowInput(16 << 20);
  const archive = await packBytes(dir, data, { compression: "lz4" });
  const server = stallingServer(archive, await blockAfter4M(archive));
  try {
    const { child, err } = start(["extract", server.url, `${out}/disk.img`, "-q"]);
    await appears(out, "disk.img.tmp-", child);
    child.kill("SIGHUP");
    const status = await child.status;
    assertEquals(status.code, 129, await err);
    assertMatch(await err, /^hexz: interrupted\n$/);
    assertEquals(names(out), []);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a tree extract interrupted by SIGTERM removes its staging directory", async () => {
  const src = await Deno.makeTempDir();
  const dir = await Deno.makeTempDir();
  const out = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${src}/sub`);
    await Deno.writeFile(`${src}/sub/a.bin`, slowInput(16 << 20));
    await Deno.writeTextFile(`${src}/b.txt`, "hello\n");
    const archive = `${dir}/t.hxz`;
    const { child: b } = start(["build", src, archive, "-q"]);
    assertEquals((await b.status).code, 0);
    const server = stallingServer(archive, await blockAfter4M(archive));
    try {
      // A new target is staged beside it; an existing empty one gets a staging dir inside.
      for (
        const [target, part, parent] of [[`${out}/new`, "new.tmp-", out], [
          out,
          ".hexz-extract-",
          out,
        ]]
      ) {
        const { child, err } = start(["extract", server.url, target, "-q"]);
        await appears(parent, part, child);
        child.kill("SIGTERM");
        assertEquals((await child.status).code, 143, await err);
        assertEquals(names(out), [], `${target}: ${names(out)}`);
      }
    } finally {
      await server.close();
    }
  } finally {
    for (const d of [src, dir, out]) await Deno.remove(d, { recursive: true });
  }
});
