/**
 * The HTTP server, driven by real curl: ranges (a-b, a-, -n, several), 416, HEAD, whole
 * bodies compared with cmp, ETag and If-None-Match, 404 and 405, directory archives, and
 * `hexz serve` as a subprocess stopped by SIGTERM.
 */
import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { assertBytesEqual, packBytes } from "./_archive.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";
import { hexz } from "./_cli.ts";
import { HexzError, open } from "../mod.ts";
import { build } from "../core/pack/build.ts";
import { rootHashHex } from "../core/read/archive.ts";
import { serveHttp } from "../serve/http.ts";

interface CurlResult {
  code: number;
  status: number;
  headers: Map<string, string>;
  body: Uint8Array;
  bodyPath: string;
}

/** Runs curl with `args`, returning the status, the headers of the last answer and the body. */
async function curl(dir: string, url: string, ...args: string[]): Promise<CurlResult> {
  const id = crypto.randomUUID();
  const bodyPath = `${dir}/body-${id}`;
  const headPath = `${dir}/head-${id}`;
  const p = await new Deno.Command("curl", {
    args: ["-s", "-D", headPath, "-o", bodyPath, "-w", "%{http_code}", ...args, url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = await Deno.readTextFile(headPath).catch(() => "");
  const headers = new Map<string, string>();
  for (const line of text.split("\r\n").slice(1)) {
    const i = line.indexOf(":");
    if (i > 0) headers.set(line.slice(0, i).toLowerCase(), line.slice(i + 1).trim());
  }
  const body = await Deno.readFile(bodyPath).catch(() => new Uint8Array(0));
  return {
    code: p.code,
    status: Number(new TextDecoder().decode(p.stdout)),
    headers,
    body,
    bodyPath,
  };
}

async function cmp(a: string, b: string): Promise<boolean> {
  return (await new Deno.Command("cmp", { args: [a, b], stdout: "null" }).output()).success;
}

Deno.test(needs(["curl", "cmp"], {
  name: "serveHttp answers curl: ranges, suffix, open end, 416, HEAD, whole body, ETag, 304",
  async fn() {
    const [dir, cleanup, keep] = await tempDir();
    // Random data then zeros: several 1 MiB pieces, and blocks of both kinds.
    const disk = new Uint8Array(5 * 1024 * 1024 + 12345);
    disk.set(pseudoRandom(3 * 1024 * 1024, 7));
    const memory = pseudoRandom(100_000, 9);
    const path = await packBytes(dir, disk, { compression: "zstd" }, memory);
    const a = keep(await open(path));
    const server = await serveHttp(a, { port: 0 });
    try {
      const base = `http://127.0.0.1:${server.addr.port}`;
      const size = disk.length;
      const etag = `"${rootHashHex(a)}-disk"`;

      let r = await curl(dir, `${base}/disk`, "-r", "0-99");
      assertEquals(r.status, 206);
      assertEquals(r.headers.get("content-range"), `bytes 0-99/${size}`);
      assertEquals(r.headers.get("content-length"), "100");
      assertEquals(r.headers.get("accept-ranges"), "bytes");
      assertBytesEqual(r.body, disk.subarray(0, 100), "bytes 0-99");

      r = await curl(dir, `${base}/disk`, "-r", "-100");
      assertEquals(r.status, 206);
      assertEquals(r.headers.get("content-range"), `bytes ${size - 100}-${size - 1}/${size}`);
      assertBytesEqual(r.body, disk.subarray(size - 100), "last 100 bytes");

      // An open range across the random/zero boundary, and a range clamped at the end.
      const from = 3 * 1024 * 1024 - 5000;
      r = await curl(dir, `${base}/disk`, "-r", `${from}-`);
      assertEquals(r.status, 206);
      assertEquals(r.headers.get("content-range"), `bytes ${from}-${size - 1}/${size}`);
      assertBytesEqual(r.body, disk.subarray(from), "open range");
      r = await curl(dir, `${base}/disk`, "-r", `${size - 10}-${size + 1000}`);
      assertEquals(r.status, 206);
      assertBytesEqual(r.body, disk.subarray(size - 10), "range clamped at the end");

      r = await curl(dir, `${base}/disk`, "-r", `${size}-`);
      assertEquals(r.status, 416);
      assertEquals(r.headers.get("content-range"), `bytes */${size}`);

      r = await curl(dir, `${base}/disk`, "-I");
      assertEquals(r.status, 200);
      assertEquals(r.headers.get("content-length"), String(size));
      assertEquals(r.headers.get("accept-ranges"), "bytes");
      assertEquals(r.headers.get("etag"), etag);

      r = await curl(dir, `${base}/disk`);
      assertEquals(r.status, 200);
      assertEquals(r.headers.get("content-length"), String(size));
      await Deno.writeFile(`${dir}/disk.img`, disk);
      assert(await cmp(r.bodyPath, `${dir}/disk.img`), "whole disk differs from the source");

      r = await curl(dir, `${base}/memory`);
      assertEquals(r.status, 200);
      assertBytesEqual(r.body, memory, "memory stream");
      assertEquals(r.headers.get("etag"), `"${rootHashHex(a)}-memory"`);

      r = await curl(dir, `${base}/disk`, "-H", `If-None-Match: ${etag}`);
      assertEquals(r.status, 304);
      assertEquals(r.body.length, 0);
      r = await curl(dir, `${base}/disk`, "-H", `If-None-Match: "other"`, "-r", "0-9");
      assertEquals(r.status, 206);
      // If-Range with another version's tag: the whole object, not the part.
      r = await curl(dir, `${base}/disk`, "-H", `If-Range: "old"`, "-r", "0-9");
      assertEquals(r.status, 200);
      assertEquals(r.body.length, size);

      // Several ranges: answered with the whole object (allowed by RFC 9110).
      r = await curl(dir, `${base}/disk`, "-r", "0-9,20-29");
      assertEquals(r.status, 200);
      assertEquals(r.body.length, size);

      assertEquals((await curl(dir, `${base}/nothing`)).status, 404);
      assertEquals((await curl(dir, `${base}/files/x`)).status, 404);
      r = await curl(dir, `${base}/disk`, "-X", "POST");
      assertEquals(r.status, 405);
      assertEquals(r.headers.get("allow"), "GET, HEAD");
      assertEquals((await curl(dir, `${base}/disk`, "-X", "PUT", "-d", "x")).status, 405);

      // The port is taken now: a second server says so in one line.
      await assertRejects(
        () => serveHttp(a, { port: server.addr.port }),
        HexzError,
        /address already in use/,
      );
    } finally {
      await server.shutdown();
      a.close();
      await cleanup();
    }
  },
}));

Deno.test(needs(["curl"], {
  name: "serveHttp publishes each regular file of a directory archive under /files/",
  async fn() {
    const [dir, cleanup, keep] = await tempDir();
    const big = pseudoRandom(300_000, 3);
    await Deno.mkdir(`${dir}/src/sub dir`, { recursive: true });
    await Deno.writeTextFile(`${dir}/src/hello.txt`, "hello\n");
    await Deno.writeFile(`${dir}/src/sub dir/big b.bin`, big);
    await Deno.writeFile(`${dir}/src/empty`, new Uint8Array(0));
    await Deno.symlink("hello.txt", `${dir}/src/link`);
    await build({ source: `${dir}/src`, output: `${dir}/t.hxz` });
    const a = keep(await open(`${dir}/t.hxz`));
    const ac = new AbortController();
    let listened = 0;
    const server = await serveHttp(a, {
      port: 0,
      signal: ac.signal,
      onListen: (addr) => listened = addr.port,
    });
    try {
      assertEquals(listened, server.addr.port);
      const base = `http://127.0.0.1:${server.addr.port}`;
      let r = await curl(dir, `${base}/files/hello.txt`);
      assertEquals(r.status, 200);
      assertEquals(new TextDecoder().decode(r.body), "hello\n");
      r = await curl(dir, `${base}/files/sub%20dir/big%20b.bin`, "-r", "1000-1999");
      assertEquals(r.status, 206);
      assertEquals(r.headers.get("content-range"), "bytes 1000-1999/300000");
      assertBytesEqual(r.body, big.subarray(1000, 2000), "file range");
      assertMatch(r.headers.get("etag")!, /-files\/sub%20dir\/big%20b\.bin"$/);
      r = await curl(dir, `${base}/files/empty`);
      assertEquals([r.status, r.headers.get("content-length")], [200, "0"]);
      // Directories and symlinks are not objects.
      assertEquals((await curl(dir, `${base}/files/sub%20dir`)).status, 404);
      assertEquals((await curl(dir, `${base}/files/link`)).status, 404);
      assertEquals((await curl(dir, `${base}/memory`)).status, 404);
    } finally {
      ac.abort();
      await server.finished;
      a.close();
      await cleanup();
    }
  },
}));

/** Reads stderr of a running process until a full line has arrived. */
async function firstLine(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
  let text = "";
  const dec = new TextDecoder();
  const deadline = Date.now() + 20_000;
  while (!text.includes("\n") && Date.now() < deadline) {
    const { done, value } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
  }
  return text.split("\n")[0];
}

Deno.test(needs(["curl"], {
  name: "hexz serve runs until SIGTERM, says where it listens, serves curl, exits 0",
  async fn() {
    const [dir, cleanup] = await tempDir();
    // Larger than the socket buffers, so an answer nobody reads stays under way.
    const disk = pseudoRandom(48_000_000, 11);
    const path = await packBytes(dir, disk);
    const cli = new URL("../cli.ts", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-q",
        "--allow-read",
        "--allow-env",
        "--allow-net",
        cli,
        "serve",
        path,
        "--port",
        "0",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const reader = child.stderr.getReader();
    let stopped = false;
    try {
      const line = await firstLine(reader);
      const m = /^hexz: serving .* at (http:\/\/127\.0\.0\.1:(\d+)) \(\/disk\)$/.exec(line);
      assert(m, `unexpected first line: ${line}`);
      const r = await curl(dir, `${m[1]}/disk`, "-r", "500-599");
      assertEquals(r.status, 206);
      assertBytesEqual(r.body, disk.subarray(500, 600), "range from the CLI server");
      // A client that asked for everything and reads nothing cannot hold the server up.
      const stalled = await Deno.connect({ port: Number(m[2]) });
      await stalled.write(new TextEncoder().encode("GET /disk HTTP/1.1\r\nHost: x\r\n\r\n"));
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      child.kill("SIGTERM");
      stopped = true;
      const late = setTimeout(() => child.kill("SIGKILL"), 15_000); // fail, do not hang
      const status = await child.status;
      clearTimeout(late);
      stalled.close();
      assertEquals(status.code, 0);
      assert(Date.now() - t0 < 10_000, `stopped after ${Date.now() - t0} ms`);
    } finally {
      if (!stopped) child.kill("SIGKILL");
      await reader.cancel();
      if (!stopped) await child.status;
      await cleanup();
    }
  },
}));

Deno.test("hexz serve rejects flags that do not go together (exit 2)", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const path = await packBytes(dir, pseudoRandom(1000));
    const perms = ["--allow-read", "--allow-env", "--allow-net"];
    let r = await hexz(["serve", path, "--socket", `${dir}/s`], { perms });
    assertEquals(r.code, 2);
    assertMatch(r.err, /--socket only applies with --nbd/);
    r = await hexz(["serve", path, "--bucket", "abc"], { perms });
    assertEquals(r.code, 2);
    r = await hexz(["serve", path, "--s3", "--bucket", "Bad_Name"], { perms });
    assertEquals(r.code, 2);
    assertMatch(r.err, /not a valid bucket name/);
    r = await hexz(["serve", path, "--port", "70000"], { perms });
    assertEquals(r.code, 2);
  } finally {
    await cleanup();
  }
});

Deno.test("a damaged block: a small range is a 500 with one report, never a 206 without a body", async () => {
  const [dir, cleanup, keep] = await tempDir();
  const disk = pseudoRandom(16 << 20, 21);
  const path = await packBytes(dir, disk, { compression: "none" });
  const good = keep(await open(path));
  const b = await good.block("disk", 160); // the block at 10 MiB
  good.close();
  const bytes = await Deno.readFile(path);
  bytes[b.entry.location + 100] ^= 0x20;
  await Deno.writeFile(path, bytes);
  const a = keep(await open(path));
  const reports: string[] = [];
  const server = await serveHttp(a, { port: 0, onError: (e) => reports.push(String(e)) });
  try {
    const base = `http://127.0.0.1:${server.addr.port}/disk`;
    let r = await fetch(base, { headers: { range: "bytes=10485000-10486000" } });
    assertEquals(r.status, 500);
    assertMatch(await r.text(), /disk block 160 \(offset 10485760\): BLAKE3 mismatch/);
    assertEquals(reports.length, 1, reports.join("\n"));
    // Elsewhere the archive still answers, byte for byte.
    r = await fetch(base, { headers: { range: "bytes=100-199" } });
    assertEquals(r.status, 206);
    assertBytesEqual(new Uint8Array(await r.arrayBuffer()), disk.subarray(100, 200), "range");
    // A large range that reaches the damage later is cut short of its Content-Length.
    r = await fetch(base, { headers: { range: `bytes=0-${12 << 20}` } });
    assertEquals(r.status, 206);
    await assertRejects(() => r.arrayBuffer());
    await new Promise((res) => setTimeout(res, 100));
    assertEquals(reports.length, 2, reports.join("\n"));
  } finally {
    await server.shutdown();
    a.close();
    await cleanup();
  }
});
