/**
 * Reading archives lazily over HTTP. The archives are published by a small file server built
 * on our own object responder (serve/objects.ts), with knobs that make it misbehave: change
 * its entity tag, cut bodies short, answer 503 or 403, or ignore ranges. It counts the
 * requests and body bytes it sends.
 */
import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { assertBytesEqual, packBytes } from "./_archive.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";
import { hexz } from "./_cli.ts";
import { HexzError, httpSource, inspect, open } from "../mod.ts";
import { fileSource } from "../core/io/source.ts";
import { type ArchiveObject, objectResponse } from "../serve/objects.ts";
import { relative } from "node:path";

interface Knobs {
  etag: string;
  /** Answer this many of the next requests with 503. */
  fail503: number;
  /** Answer every request with this status (0: behave). */
  status: number;
  /** Send only half of every ranged body (with a matching Content-Length). */
  truncate: boolean;
  /** Answer ranged GETs with the whole file (200). */
  ignoreRange: boolean;
  /** Answer every GET with this status (0: behave); HEAD still behaves. */
  getStatus: number;
  /** Leave the entity tag (and Last-Modified) out of answers to GETs. */
  noValidatorOnGet: boolean;
  /** Answer with the body compressed in this Content-Encoding ("gzip", "deflate"; "": none). */
  encoding: string;
}

interface FileServer {
  base: string;
  knobs: Knobs;
  sent: { requests: number; bytes: number };
  close(): Promise<void>;
}

/** Serves the files of `dir` with ranges, counting what it sends. */
function fileServer(dir: string): FileServer {
  const knobs: Knobs = {
    etag: '"v1"',
    fail503: 0,
    status: 0,
    truncate: false,
    ignoreRange: false,
    getStatus: 0,
    noValidatorOnGet: false,
    encoding: "",
  };
  const sent = { requests: 0, bytes: 0 };
  const counted = (body: ReadableStream<Uint8Array> | null) =>
    body?.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, c) {
          sent.bytes += chunk.length;
          c.enqueue(chunk);
        },
      }),
    ) ?? null;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    sent.requests++;
    if (knobs.fail503 > 0) {
      knobs.fail503--;
      return new Response("busy", { status: 503 });
    }
    if (knobs.status) return new Response("no", { status: knobs.status });
    if (knobs.getStatus && req.method === "GET") {
      return new Response("no", { status: knobs.getStatus });
    }
    const path = `${dir}${decodeURIComponent(new URL(req.url).pathname)}`;
    const src = await fileSource(path).catch(() => null);
    if (!src) return new Response("not found", { status: 404 });
    const obj: ArchiveObject = {
      key: path,
      size: src.size,
      etag: knobs.etag,
      lastModified: new Date(0),
      read: (o, n) => src.read(o, n),
    };
    const plain = new Request(req.url, { method: req.method });
    let res = await objectResponse(knobs.ignoreRange ? plain : req, obj);
    if (knobs.noValidatorOnGet && req.method === "GET") {
      const headers = new Headers(res.headers);
      headers.delete("etag");
      headers.delete("last-modified");
      res = new Response(res.body, { status: res.status, headers });
    }
    if (knobs.encoding) {
      const headers = new Headers(res.headers);
      headers.set("content-encoding", knobs.encoding);
      let body: Uint8Array<ArrayBuffer> | null = null;
      if (req.method === "GET") {
        const plainBody = new Uint8Array(await res.arrayBuffer());
        const format = knobs.encoding as CompressionFormat;
        const packed = new Blob([plainBody]).stream().pipeThrough(new CompressionStream(format));
        body = new Uint8Array(await new Response(packed).arrayBuffer());
        headers.set("content-length", String(body.length));
      } else await res.body?.cancel();
      src.close();
      return new Response(body, { status: res.status, headers });
    }
    if (knobs.truncate && res.status === 206) {
      const whole = new Uint8Array(await res.arrayBuffer());
      const half = whole.subarray(0, whole.length >> 1);
      const headers = new Headers(res.headers);
      headers.set("content-length", String(half.length));
      src.close();
      sent.bytes += half.length;
      return new Response(half, { status: 206, headers });
    }
    // Close the file once the body has been sent.
    const body = res.body?.pipeThrough(
      new TransformStream({ flush: () => src.close() }),
    ) ?? null;
    if (!body) src.close();
    return new Response(counted(body), res);
  });
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    knobs,
    sent,
    close: () => server.shutdown(),
  };
}

const MiB = 1024 * 1024;

Deno.test("a 64 MiB archive by URL: inspect and a 4 KiB read transfer little; full read is exact", async () => {
  const [dir, cleanup] = await tempDir();
  // Random (incompressible) except for a zero stretch: 64 MiB of archive to fetch from.
  const disk = new Uint8Array(66 * MiB);
  disk.set(pseudoRandom(64 * MiB, 21));
  const path = await packBytes(dir, disk);
  const name = path.slice(dir.length);
  const server = fileServer(dir);
  try {
    const url = `${server.base}${name}`;
    const a = await open(url);
    try {
      assertEquals(a.source.name, url);
      assert(a.source.size > 64 * MiB, "archive is not as large as meant");
      const report = inspect(a);
      assertEquals(report.streams[0].logicalSize, disk.length);
      assert(server.sent.bytes < MiB, `open and inspect fetched ${server.sent.bytes} bytes`);
      const at = 40 * MiB + 12345;
      assertBytesEqual(await a.read("disk", at, 4096), disk.subarray(at, at + 4096), "4 KiB");
      assert(server.sent.bytes < MiB, `a 4 KiB read fetched ${server.sent.bytes} bytes in all`);

      // Everything, in 4 MiB pieces: equal to the source, in far fewer requests than blocks.
      const before = server.sent.requests;
      for (let off = 0; off < disk.length; off += 4 * MiB) {
        const n = Math.min(4 * MiB, disk.length - off);
        assertBytesEqual(await a.read("disk", off, n), disk.subarray(off, off + n), `at ${off}`);
      }
      const requests = server.sent.requests - before;
      assert(requests < 200, `full read took ${requests} requests for 1056 blocks`);
    } finally {
      a.close();
    }

    // The CLI: inspect and cat by URL (needs --allow-net, and says so without it).
    const perms = ["--allow-read", "--allow-env", "--allow-net"];
    let r = await hexz(["inspect", url], { perms });
    assertEquals(r.code, 0, r.err);
    assertMatch(r.out, new RegExp(`size: .*\\(${disk.length} bytes\\)`));
    const at2 = 7 * MiB + 99;
    const sentBefore = server.sent.bytes;
    r = await hexz(["cat", url, "--offset", String(at2), "--length", "4096"], { perms });
    assertEquals(r.code, 0, r.err);
    assertBytesEqual(r.stdout, disk.subarray(at2, at2 + 4096), "hexz cat by URL");
    assert(server.sent.bytes - sentBefore < MiB, "hexz cat of 4 KiB fetched 1 MiB or more");
    r = await hexz(["inspect", url], { perms: ["--allow-read", "--allow-env"] });
    assertEquals(r.code, 1);
    assertMatch(r.err, /^hexz: .*--allow-net/);
  } finally {
    await server.close();
    await cleanup();
  }
});
Deno.test("a thin archive by URL finds its parent relative to its own URL", async () => {
  const [dir, cleanup, keep] = await tempDir();
  const base = pseudoRandom(3 * MiB, 31);
  const child = base.slice();
  child.set(pseudoRandom(100_000, 32), MiB);
  const parentPath = await packBytes(dir, base);
  await Deno.mkdir(`${dir}/site/base`, { recursive: true });
  await Deno.rename(parentPath, `${dir}/site/base/parent.hxz`);
  const parent = keep(await open(`${dir}/site/base/parent.hxz`));
  // Packed beside where it is served, with the base named by a relative path (as on the
  // command line): it is recorded relative to the child's directory, "base/parent.hxz".
  const basePath = relative(Deno.cwd(), `${dir}/site/base/parent.hxz`);
  const childPath = await packBytes(`${dir}/site`, child, { base: parent, basePath });
  parent.close();
  await Deno.rename(childPath, `${dir}/site/child.hxz`);
  const server = fileServer(`${dir}/site`);
  try {
    const a = await open(`${server.base}/child.hxz`);
    try {
      assert(a.header.streams[0].parentBlocks > 0, "the child is not thin");
      assertEquals((await a.parent())!.source.name, `${server.base}/base/parent.hxz`);
      assertBytesEqual(await a.read("disk", 0, child.length), child, "thin child by URL");
    } finally {
      a.close();
    }
    // A missing parent is named.
    await Deno.rename(`${dir}/site/base/parent.hxz`, `${dir}/site/base/moved.hxz`);
    const e = await assertRejects(() => open(`${server.base}/child.hxz`), HexzError);
    assertEquals((e as HexzError).code, "parent");
    assertMatch(e.message, /base\/parent\.hxz of http:\S*\/child\.hxz not found/);
  } finally {
    await server.close();
    await cleanup();
  }
});

Deno.test("httpSource coalesces adjacent reads, shares concurrent ones, retries 503, not 403", async () => {
  const [dir, cleanup] = await tempDir();
  const bytes = pseudoRandom(3 * MiB, 41);
  await Deno.writeFile(`${dir}/f.bin`, bytes);
  const server = fileServer(dir);
  const stats = { requests: 0, bytes: 0 };
  const src = await httpSource(`${server.base}/f.bin`, { stats, retries: 3 });
  try {
    assertEquals(src.size, bytes.length);
    assertEquals(stats.requests, 1); // the HEAD
    const [x, y, z] = await Promise.all([
      src.read(1000, 10),
      src.read(1000, 10),
      src.read(2000, 300),
    ]);
    assertBytesEqual(x, bytes.subarray(1000, 1010));
    assertBytesEqual(y, bytes.subarray(1000, 1010));
    assertBytesEqual(z, bytes.subarray(2000, 2300));
    assertEquals(stats.requests, 2, "three reads in one block should share one request");
    assertEquals(stats.bytes, 64 * 1024);
    assertBytesEqual(await src.read(5000, 100), bytes.subarray(5000, 5100));
    assertEquals(stats.requests, 2, "a read in a fetched block should not ask again");
    // Two blocks, neither fetched yet: one request.
    assertBytesEqual(await src.read(MiB - 10, 20), bytes.subarray(MiB - 10, MiB + 10));
    assertEquals(stats.requests, 3);
    assertEquals(server.sent.requests, 3);

    server.knobs.fail503 = 2;
    assertBytesEqual(await src.read(2 * MiB, 4096), bytes.subarray(2 * MiB, 2 * MiB + 4096));
    assertEquals(stats.requests, 6, "two 503s and a success");

    server.knobs.status = 403;
    const e = await assertRejects(() => src.read(2.5 * MiB, 10), HexzError, /HTTP 403/);
    assertEquals((e as HexzError).code, "io");
    assertEquals(stats.requests, 7, "a 4xx must not be retried");
    server.knobs.status = 0;

    server.knobs.fail503 = 100;
    await assertRejects(() => src.read(2.75 * MiB, 10), HexzError, /HTTP 503.*gave up after 4/);
    server.knobs.fail503 = 0;
  } finally {
    src.close();
    await server.close();
    await cleanup();
  }
});

Deno.test("httpSource: a changed ETag, cut bodies, ignored ranges and 404 are clear errors", async () => {
  const [dir, cleanup] = await tempDir();
  const bytes = pseudoRandom(MiB, 51);
  await Deno.writeFile(`${dir}/f.bin`, bytes);
  const server = fileServer(dir);
  try {
    const src = await httpSource(`${server.base}/f.bin`, { retries: 1 });
    try {
      assertBytesEqual(await src.read(0, 10), bytes.subarray(0, 10));
      server.knobs.etag = '"v2"';
      await assertRejects(
        () => src.read(500_000, 10),
        HexzError,
        /f\.bin: the file changed while being read \(etag "v1" became "v2"\)/,
      );
      server.knobs.etag = '"v1"';

      server.knobs.truncate = true;
      await assertRejects(
        () => src.read(700_000, 10),
        HexzError,
        /bytes=655360-720895: body cut short: 32768 of 65536 bytes \(gave up after 2 attempts\)/,
      );
      server.knobs.truncate = false;
      assertBytesEqual(await src.read(700_000, 10), bytes.subarray(700_000, 700_010));

      server.knobs.ignoreRange = true;
      await assertRejects(
        () => src.read(900_000, 10),
        HexzError,
        /HTTP 200 instead of 206: the server does not answer range requests/,
      );
      server.knobs.ignoreRange = false;
    } finally {
      src.close();
    }
    const e = await assertRejects(() => httpSource(`${server.base}/none.hxz`), HexzError, /404/);
    assertEquals((e as HexzError).code, "not-found");
    await assertRejects(() => httpSource("ftp://x/y"), HexzError, /only http and https/);
  } finally {
    await server.close();
    await cleanup();
  }
});

Deno.test("httpSource gives up on a server that stalls every time after two timeouts, not every retry", async () => {
  const size = 1 << 20;
  const stalls: ((r: Response) => void)[] = [];
  let gets = 0;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    if (req.method === "HEAD") {
      return new Response(null, {
        headers: { "content-length": String(size), "accept-ranges": "bytes", etag: '"x"' },
      });
    }
    gets++;
    return new Promise<Response>((resolve) => stalls.push(resolve)); // never answers
  });
  const src = await httpSource(`http://127.0.0.1:${server.addr.port}/a`, {
    timeoutMs: 200,
    retries: 4,
  });
  try {
    const t0 = Date.now();
    await assertRejects(
      () => src.read(0, 10),
      HexzError,
      /no answer within 200 ms \(gave up after 2 attempts\)/,
    );
    assertEquals(gets, 2);
    assert(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
  } finally {
    src.close();
    for (const r of stalls) r(new Response(null, { status: 503 }));
    await server.shutdown();
  }
});

Deno.test("httpSource: an answer without the entity tag sent before is taken as a changed file", async () => {
  const [dir, cleanup] = await tempDir();
  const bytes = pseudoRandom(MiB, 52);
  await Deno.writeFile(`${dir}/f.bin`, bytes);
  const server = fileServer(dir);
  const url = `${server.base}/f.bin`;
  try {
    const src = await httpSource(url, { retries: 1 });
    try {
      assertBytesEqual(await src.read(0, 10), bytes.subarray(0, 10));
      server.knobs.noValidatorOnGet = true;
      const e = await assertRejects(() => src.read(500_000, 10), HexzError);
      assertEquals(
        e.message,
        `${url}: the file may have changed while being read (etag "v1" no longer sent)`,
      );
      assertEquals((e as HexzError).code, "io");
    } finally {
      src.close();
    }
    // From the first read on: the HEAD had one, the GET has none.
    const again = await httpSource(url, { retries: 1 });
    try {
      await assertRejects(() => again.read(0, 10), HexzError, /etag "v1" no longer sent/);
    } finally {
      again.close();
    }
  } finally {
    await server.close();
    await cleanup();
  }
});

Deno.test("httpSource refuses an answer with a Content-Encoding, naming it, without retrying", async () => {
  const [dir, cleanup] = await tempDir();
  const bytes = pseudoRandom(MiB, 53);
  await Deno.writeFile(`${dir}/f.bin`, bytes);
  const server = fileServer(dir);
  const url = `${server.base}/f.bin`;
  try {
    const stats = { requests: 0, bytes: 0 };
    const src = await httpSource(url, { retries: 3, stats });
    try {
      for (const encoding of ["gzip", "deflate"]) {
        server.knobs.encoding = encoding;
        const before = stats.requests;
        const e = await assertRejects(() => src.read(300_000, 10), HexzError);
        assertEquals(
          e.message,
          `${url}: GET bytes=262144-327679: answered with Content-Encoding ${encoding}, ` +
            "not the bytes of the file (asked for identity)",
        );
        assertEquals(stats.requests - before, 1, "an encoded answer must not be retried");
      }
      server.knobs.encoding = "";
      assertBytesEqual(await src.read(300_000, 10), bytes.subarray(300_000, 300_010));
    } finally {
      src.close();
    }
    // The size from a HEAD that describes an encoded body is not the file's either.
    server.knobs.encoding = "gzip";
    await assertRejects(
      () => httpSource(url),
      HexzError,
      /f\.bin: HEAD: answered with Content-Encoding gzip, not the bytes of the file/,
    );
  } finally {
    await server.close();
    await cleanup();
  }
});

Deno.test("HTTP errors while opening an archive name its URL once", async () => {
  const [dir, cleanup] = await tempDir();
  const path = await packBytes(dir, pseudoRandom(200_000, 54));
  const server = fileServer(dir);
  const url = `${server.base}${path.slice(dir.length)}`;
  const once = (msg: string) => assertEquals(msg.split(url).length - 1, 1, msg);
  try {
    server.knobs.getStatus = 403;
    const e = await assertRejects(() => open(url), HexzError, /HTTP 403/);
    once(e.message);
    assertEquals(e.message, `${url}: GET bytes=0-65535: HTTP 403 Forbidden`);
    const perms = ["--allow-read", "--allow-env", "--allow-net"];
    let r = await hexz(["inspect", url], { perms });
    assertEquals(r.code, 1);
    assertEquals(r.err, `hexz: ${url}: GET bytes=0-65535: HTTP 403 Forbidden\n`);
    server.knobs.getStatus = 0;
    server.knobs.etag = '"v2"';
    server.knobs.status = 404;
    r = await hexz(["inspect", url], { perms });
    assertEquals(r.err, `hexz: ${url}: HEAD: HTTP 404 Not Found\n`);
  } finally {
    await server.close();
    await cleanup();
  }
});

Deno.test("httpSource: a refused connection is named as such, not as 'fetch failed'", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close(); // nothing listens there now
  const e = await assertRejects(
    () => httpSource(`http://127.0.0.1:${port}/a.hxz`, { retries: 0 }),
    HexzError,
  );
  assertMatch(e.message, new RegExp(`^http://127.0.0.1:${port}/a.hxz: .*Connection refused`));
});
