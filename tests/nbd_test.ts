/**
 * The NBD server against real clients: qemu-img and qemu-io over a Unix socket and TCP, a
 * writable export with an overlay (restart, commit), and a hand-written client that sends
 * malformed and out-of-range messages.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { assertBytesEqual, packBytes, readAll } from "./_archive.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";
import { open } from "../mod.ts";
import type { Archive } from "../core/read/archive.ts";
import { openOverlay } from "../core/overlay/overlay.ts";
import { commitOverlay } from "../core/overlay/commit.ts";
import { serveNbd } from "../serve/nbd.ts";

const MiB = 1024 * 1024;
const QEMU = ["qemu-img", "qemu-io", "cmp"];

/** 8 MiB of random data, zero runs, a repeated byte and a repeated phrase. */
function testImage(): Uint8Array {
  const img = new Uint8Array(8 * MiB);
  img.set(pseudoRandom(2 * MiB, 7), 0); // 0..2 MiB random
  // 2..3 MiB zero
  img.fill(0x5a, 3 * MiB, 4 * MiB); // 3..4 MiB one byte repeated
  const phrase = new TextEncoder().encode("hexz nbd test phrase ");
  for (let o = 4 * MiB; o < 5 * MiB; o += phrase.length) {
    img.set(phrase.subarray(0, Math.min(phrase.length, 5 * MiB - o)), o);
  }
  img.set(pseudoRandom(MiB, 8), 5 * MiB); // 5..6 MiB random
  // 6..8 MiB zero, but for a short random run
  img.set(pseudoRandom(4000, 9), 7 * MiB + 100);
  return img;
}

interface Run {
  code: number;
  out: string;
  err: string;
}

async function run(cmd: string, ...args: string[]): Promise<Run> {
  const p = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const d = new TextDecoder();
  return { code: p.code, out: d.decode(p.stdout), err: d.decode(p.stderr) };
}

/** qemu-io on a raw NBD image; `-c` commands as given. */
function qemuIo(uri: string, cmds: string[], extra: string[] = []): Promise<Run> {
  return run("qemu-io", ...extra, "-f", "raw", uri, ...cmds.flatMap((c) => ["-c", c]));
}

/** Asserts qemu-io succeeded and printed no error (qemu-io exits 0 on some failed commands). */
function assertIoOk(r: Run, what: string) {
  assert(r.code === 0 && !/fail|error/i.test(r.out + r.err), `${what}: ${r.out}${r.err}`);
}

/** Bytes from the hexdump `read -v` prints ("00001000:  ab cd ... "). */
function parseHexdump(out: string): Uint8Array {
  const bytes: number[] = [];
  for (const line of out.split("\n")) {
    const m = /^[0-9a-f]{8}:\s+((?:[0-9a-f]{2} ){1,16})/.exec(line);
    if (m) { for (const h of m[1].trim().split(" ")) bytes.push(parseInt(h, 16)); }
  }
  return new Uint8Array(bytes);
}

interface Fixture {
  dir: string;
  img: Uint8Array;
  mem: Uint8Array;
  path: string;
  archive: Archive;
  done: () => Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const [dir, cleanup] = await tempDir("hexz-nbd-");
  const img = testImage();
  const mem = pseudoRandom(MiB, 11);
  const path = await packBytes(dir, img, { compression: "zstd" }, mem);
  const archive = await open(path);
  return {
    dir,
    img,
    mem,
    path,
    archive,
    done: async () => {
      archive.close();
      await cleanup();
    },
  };
}

Deno.test(needs(QEMU, {
  name: "serveNbd serves the disk to qemu-img and qemu-io over a Unix socket",
  async fn() {
    const f = await fixture();
    const sock = `${f.dir}/nbd.sock`;
    // A stale socket file from a server that is gone must not stop a new one.
    const stale = Deno.listen({ transport: "unix", path: sock });
    stale.close();
    const server = await serveNbd(f.archive, { socket: sock, readOnly: true });
    try {
      assertEquals(server.address, `nbd+unix:///?socket=${sock}`);
      await Deno.writeFile(`${f.dir}/image.raw`, f.img);
      const conv = await run(
        "qemu-img",
        "convert",
        "-f",
        "raw",
        "-O",
        "raw",
        server.address,
        `${f.dir}/out.raw`,
      );
      assertEquals(conv.code, 0, conv.err);
      const cmp = await run("cmp", `${f.dir}/image.raw`, `${f.dir}/out.raw`);
      assertEquals(cmp.code, 0, `qemu-img convert output differs: ${cmp.out}`);

      const info = await run("qemu-img", "info", "-f", "raw", server.address);
      assertEquals(info.code, 0, info.err);
      assertMatch(info.out, /virtual size: 8 MiB \(8388608 bytes\)/);

      const ro = ["-r"];
      assertIoOk(await qemuIo(server.address, ["read -P 0 2M 1M"], ro), "zero run");
      assertIoOk(await qemuIo(server.address, ["read -P 0 6M 1M"], ro), "zero run 2");
      assertIoOk(await qemuIo(server.address, ["read -P 0x5a 3M 1M"], ro), "repeated byte");
      const wrong = await qemuIo(server.address, ["read -P 0 0 4096"], ro);
      assert(/Pattern verification failed/.test(wrong.out + wrong.err), "pattern check can fail");

      for (const [off, len] of [[0, 64], [4 * MiB + 5, 48], [7 * MiB + 90, 32]]) {
        const r = await qemuIo(server.address, [`read -v ${off} ${len}`], ro);
        assertIoOk(r, `read -v ${off}`);
        assertBytesEqual(parseHexdump(r.out), f.img.subarray(off, off + len), `read -v ${off}`);
      }

      // The stream name selects the memory stream.
      const memUri = `nbd+unix:///memory?socket=${sock}`;
      const mi = await run("qemu-img", "info", "-f", "raw", memUri);
      assertMatch(mi.out, /virtual size: 1 MiB \(1048576 bytes\)/, mi.err);
      const mr = await qemuIo(memUri, ["read -v 4096 32"], ro);
      assertBytesEqual(parseHexdump(mr.out), f.mem.subarray(4096, 4096 + 32), "memory read");
      const missing = await run("qemu-img", "info", "-f", "raw", `nbd+unix:///nope?socket=${sock}`);
      assert(missing.code !== 0, "an unknown export name is refused");
    } finally {
      await server.close();
      await f.done();
    }
    assert(!(await exists(sock)), "close() removes the socket file");
  },
}));

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test(needs(QEMU, {
  name: "serveNbd serves over TCP and a read-only export refuses writes",
  async fn() {
    const f = await fixture();
    const server = await serveNbd(f.archive, { port: 0, readOnly: true });
    try {
      assertMatch(server.address, /^nbd:\/\/127\.0\.0\.1:\d+\/$/);
      const conv = await run(
        "qemu-img",
        "convert",
        "-f",
        "raw",
        "-O",
        "raw",
        server.address,
        `${f.dir}/tcp.raw`,
      );
      assertEquals(conv.code, 0, conv.err);
      assertBytesEqual(await Deno.readFile(`${f.dir}/tcp.raw`), f.img, "TCP copy");
      assertIoOk(await qemuIo(server.address, ["read -P 0 2M 64k"], ["-r"]), "TCP zero read");

      const w = await qemuIo(server.address, ["write -P 0xab 4096 8192"]);
      // qemu-io sees the READ_ONLY flag and refuses to open the export for writing.
      assert(w.code !== 0, `write to a read-only export must fail: ${w.out}${w.err}`);
      assertMatch(w.out + w.err, /Permission denied|not permitted|read-only/i);
      // Still serving, and unchanged.
      const r = await qemuIo(server.address, ["read -v 4096 16"], ["-r"]);
      assertBytesEqual(parseHexdump(r.out), f.img.subarray(4096, 4096 + 16), "unchanged");
    } finally {
      await server.close();
      await f.done();
    }
  },
}));

Deno.test(needs(QEMU, {
  name: "serveNbd writes to an overlay that survives a restart and commits",
  async fn() {
    const f = await fixture();
    const sock = `${f.dir}/rw.sock`;
    const ovPath = `${f.dir}/disk.hxo`;
    const expected = f.img.slice();
    let server = await serveNbd(f.archive, { socket: sock, readOnly: false, overlay: ovPath });
    try {
      const uri = server.address;
      assertIoOk(await qemuIo(uri, ["write -P 0xab 4096 8192", "flush"]), "write");
      expected.fill(0xab, 4096, 4096 + 8192);
      // Unaligned, across 4 KiB blocks.
      assertIoOk(await qemuIo(uri, ["write -P 0xcd 1000001 10000"]), "unaligned write");
      expected.fill(0xcd, 1000001, 1000001 + 10000);
      assertIoOk(await qemuIo(uri, ["write -z 3M 64k"]), "write zeroes");
      expected.fill(0, 3 * MiB, 3 * MiB + 64 * 1024);
      assertIoOk(await qemuIo(uri, ["discard 5M 128k"], ["-d", "unmap"]), "discard");
      expected.fill(0, 5 * MiB, 5 * MiB + 128 * 1024);
      assertIoOk(await qemuIo(uri, ["read -P 0xab 4096 8192"]), "read back");
      assertIoOk(await qemuIo(uri, ["read -P 0 3M 64k"]), "zeroed");
      assertIoOk(await qemuIo(uri, ["read -P 0 5M 128k"]), "discarded");

      // Restart on the same overlay: the writes are still there.
      await server.close();
      server = await serveNbd(f.archive, { socket: sock, readOnly: false, overlay: ovPath });
      assertIoOk(await qemuIo(uri, ["read -P 0xab 4096 8192"]), "after restart");
      const conv = await run(
        "qemu-img",
        "convert",
        "-f",
        "raw",
        "-O",
        "raw",
        uri,
        `${f.dir}/m.raw`,
      );
      assertEquals(conv.code, 0, conv.err);
      assertBytesEqual(await Deno.readFile(`${f.dir}/m.raw`), expected, "image after restart");
      await server.close();

      // A read-only server on the overlay shows the writes too.
      server = await serveNbd(f.archive, { socket: sock, readOnly: true, overlay: ovPath });
      assertIoOk(await qemuIo(uri, ["read -P 0xcd 1000001 10000"], ["-r"]), "read-only overlay");
      await server.close();

      const ov = await openOverlay(ovPath, f.archive, { readOnly: true });
      const out = `${f.dir}/committed.hxz`;
      try {
        await commitOverlay(f.archive, ov, { output: out, mode: "flatten" });
      } finally {
        ov.close();
      }
      const committed = await open(out);
      try {
        assertBytesEqual(await readAll(committed, "disk"), expected, "committed disk");
        assertBytesEqual(await readAll(committed, "memory"), f.mem, "committed memory");
      } finally {
        committed.close();
      }
    } finally {
      await server.close();
      await f.done();
    }
  },
}));

// ---- A hand-written NBD client, for what qemu never sends. ----

const enc = new TextEncoder();

/** A connection with exact reads that give up after a few seconds (a hung server fails). */
async function rawConnect(path: string) {
  const conn = await Deno.connect({ transport: "unix", path });
  let pending = new Uint8Array(0);
  const exact = async (n: number): Promise<Uint8Array | null> => {
    const timer = setTimeout(() => conn.close(), 5000);
    try {
      const out = new Uint8Array(n);
      let got = Math.min(n, pending.length);
      out.set(pending.subarray(0, got));
      pending = pending.slice(got);
      while (got < n) {
        const b = new Uint8Array(256 * 1024);
        let r: number | null;
        try {
          r = await conn.read(b);
        } catch {
          r = null;
        }
        if (r === null) return null;
        const take = Math.min(r, n - got);
        out.set(b.subarray(0, take), got);
        got += take;
        pending = b.slice(take, r);
      }
      return out;
    } finally {
      clearTimeout(timer);
    }
  };
  const write = async (b: Uint8Array) => {
    let done = 0;
    while (done < b.length) done += await conn.write(b.subarray(done));
  };
  return {
    exact,
    write,
    close: () => {
      try {
        conn.close();
      } catch { /* closed */ }
    },
    /** Reads the server hello and sends client flags. */
    async hello(clientFlags: number) {
      const h = await exact(18);
      assert(h, "server hello");
      const dv = new DataView(h.buffer);
      assertEquals(dv.getBigUint64(0), 0x4e42444d41474943n);
      assertEquals(dv.getBigUint64(8), 0x49484156454f5054n);
      assertEquals(dv.getUint16(16), 3);
      const f = new Uint8Array(4);
      new DataView(f.buffer).setUint32(0, clientFlags >>> 0);
      await write(f);
    },
    async option(opt: number, data: Uint8Array = new Uint8Array(0)) {
      const b = new Uint8Array(16 + data.length);
      const dv = new DataView(b.buffer);
      dv.setBigUint64(0, 0x49484156454f5054n);
      dv.setUint32(8, opt);
      dv.setUint32(12, data.length);
      b.set(data, 16);
      await write(b);
    },
    /** One option reply: [option, type, data]. */
    async optionReply(): Promise<[number, number, Uint8Array]> {
      const h = await exact(20);
      assert(h, "option reply");
      const dv = new DataView(h.buffer);
      assertEquals(dv.getBigUint64(0), 0x3e889045565a9n);
      const data = await exact(dv.getUint32(16));
      assert(data, "option reply data");
      return [dv.getUint32(8), dv.getUint32(12), data];
    },
    async request(type: number, cookie: number, offset: number, length: number, flags = 0) {
      const b = new Uint8Array(28);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, 0x25609513);
      dv.setUint16(4, flags);
      dv.setUint16(6, type);
      dv.setBigUint64(8, BigInt(cookie));
      dv.setBigUint64(16, BigInt(offset));
      dv.setUint32(24, length);
      await write(b);
    },
    /** One structured reply chunk. */
    async chunk(): Promise<{ flags: number; type: number; cookie: number; payload: Uint8Array }> {
      const h = await exact(20);
      assert(h, "structured reply chunk");
      const dv = new DataView(h.buffer);
      assertEquals(dv.getUint32(0), 0x668e33ef, "structured reply magic");
      const payload = await exact(dv.getUint32(16));
      assert(payload, "chunk payload");
      return {
        flags: dv.getUint16(4),
        type: dv.getUint16(6),
        cookie: Number(dv.getBigUint64(8)),
        payload,
      };
    },
    /** One simple reply: [cookie, error]. */
    async reply(): Promise<[number, number]> {
      const h = await exact(16);
      assert(h, "simple reply");
      const dv = new DataView(h.buffer);
      assertEquals(dv.getUint32(0), 0x67446698);
      return [Number(dv.getBigUint64(8)), dv.getUint32(4)];
    },
  };
}

function infoRequest(name: string, infos: number[] = []): Uint8Array {
  const n = enc.encode(name);
  const b = new Uint8Array(4 + n.length + 2 + 2 * infos.length);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, n.length);
  b.set(n, 4);
  dv.setUint16(4 + n.length, infos.length);
  infos.forEach((t, i) => dv.setUint16(6 + n.length + 2 * i, t));
  return b;
}

/** A LIST_META_CONTEXT or SET_META_CONTEXT request. */
function metaRequest(name: string, queries: string[]): Uint8Array {
  const n = enc.encode(name);
  const qs = queries.map((q) => enc.encode(q));
  const b = new Uint8Array(8 + n.length + qs.reduce((t, q) => t + 4 + q.length, 0));
  const dv = new DataView(b.buffer);
  dv.setUint32(0, n.length);
  b.set(n, 4);
  dv.setUint32(4 + n.length, qs.length);
  let at = 8 + n.length;
  for (const q of qs) {
    dv.setUint32(at, q.length);
    b.set(q, at + 4);
    at += 4 + q.length;
  }
  return b;
}

const BASE_ALLOCATION = "base:allocation";
const ERR_UNSUP = 0x80000001;
const ERR_INVALID = 0x80000003;
const ERR_UNKNOWN = 0x80000006;
const READ = 0, WRITE = 1, DISC = 2, FLUSH = 3, WRITE_ZEROES = 6;
const EPERM = 1, EINVAL = 22, ENOSPC = 28;

Deno.test(needs(QEMU, {
  name: "serveNbd answers bad options and requests with NBD errors and keeps serving",
  async fn() {
    const f = await fixture();
    const sock = `${f.dir}/raw.sock`;
    const server = await serveNbd(f.archive, { socket: sock, readOnly: true });
    const conns: Awaited<ReturnType<typeof rawConnect>>[] = [];
    try {
      // A: option negotiation.
      const a = await rawConnect(sock);
      conns.push(a);
      await a.hello(3);
      await a.option(99, enc.encode("xyz"));
      assertEquals(await a.optionReply().then((r) => r.slice(0, 2)), [99, ERR_UNSUP]);
      await a.option(5); // STARTTLS
      assertEquals(await a.optionReply().then((r) => r.slice(0, 2)), [5, ERR_UNSUP]);
      // Metadata contexts need structured replies first (this connection stays simple).
      await a.option(10, metaRequest("", [BASE_ALLOCATION]));
      assertEquals(await a.optionReply().then((r) => r.slice(0, 2)), [10, ERR_INVALID]);
      await a.option(3); // LIST
      const names: string[] = [];
      for (;;) {
        const [opt, type, data] = await a.optionReply();
        assertEquals(opt, 3);
        if (type === 1) break;
        assertEquals(type, 2);
        names.push(new TextDecoder().decode(data.subarray(4)));
      }
      assertEquals(names, ["", "disk", "memory"]);
      await a.option(6, infoRequest("nope"));
      assertEquals(await a.optionReply().then((r) => r.slice(0, 2)), [6, ERR_UNKNOWN]);
      await a.option(6, new Uint8Array(3));
      assertEquals(await a.optionReply().then((r) => r.slice(0, 2)), [6, ERR_INVALID]);
      await a.option(7, infoRequest("", [3]));
      const [, t1, exportInfo] = await a.optionReply();
      assertEquals(t1, 3);
      const ei = new DataView(exportInfo.buffer);
      assertEquals([ei.getUint16(0), Number(ei.getBigUint64(2))], [0, 8 * MiB]);
      assertEquals(ei.getUint16(10) & 3, 3, "HAS_FLAGS and READ_ONLY");
      assertEquals(ei.getUint16(10) & (4 | 32 | 64), 4 | 32 | 64, "FLUSH, TRIM, WRITE_ZEROES");
      const [, t2, blockInfo] = await a.optionReply();
      assertEquals([t2, new DataView(blockInfo.buffer).getUint16(0)], [3, 3]);
      assertEquals((await a.optionReply())[1], 1, "ACK ends GO");

      // B: a second connection, chosen by the old EXPORT_NAME option, without NO_ZEROES.
      const b = await rawConnect(sock);
      conns.push(b);
      await b.hello(1);
      await b.option(1, enc.encode("memory"));
      const eb = await b.exact(134);
      assert(eb, "EXPORT_NAME reply with 124 zero bytes");
      assertEquals(Number(new DataView(eb.buffer).getBigUint64(0)), MiB);

      // A: pipelined requests, answered by cookie.
      await a.request(READ, 1, MiB - 100, 300);
      await a.request(READ, 2, 8 * MiB - 10, 20); // past the end
      await a.request(READ, 3, 0, 33 * MiB); // too long
      await a.request(READ, 4, 2 ** 62, 1); // absurd offset
      const got = new Map<number, number>();
      for (let i = 0; i < 4; i++) {
        const [cookie, err] = await a.reply();
        got.set(cookie, err);
        if (cookie === 1) {
          assertBytesEqual((await a.exact(300))!, f.img.subarray(MiB - 100, MiB + 200), "read");
        }
      }
      assertEquals([...got].sort(), [[1, 0], [2, EINVAL], [3, EINVAL], [4, EINVAL]]);
      // A write on a read-only export: EPERM, and its payload is consumed.
      await a.request(WRITE, 5, 0, 4096);
      await a.write(new Uint8Array(4096).fill(7));
      assertEquals(await a.reply(), [5, EPERM]);
      await a.request(WRITE_ZEROES, 6, 0, 4096);
      assertEquals(await a.reply(), [6, EPERM]);
      await a.request(42, 7, 0, 0);
      assertEquals(await a.reply(), [7, EINVAL]);
      await a.request(READ, 8, 0, 16, 0x80); // unknown flag
      assertEquals(await a.reply(), [8, EINVAL]);
      await a.request(FLUSH, 9, 0, 0);
      assertEquals(await a.reply(), [9, 0]);
      await a.request(READ, 10, 5 * MiB, 16);
      assertEquals(await a.reply(), [10, 0]);
      assertBytesEqual((await a.exact(16))!, f.img.subarray(5 * MiB, 5 * MiB + 16), "in step");
      // Garbage instead of a request: the server closes this connection only.
      await a.write(enc.encode("this is not an NBD request!!"));
      assertEquals(await a.exact(1), null, "closed after garbage");

      await b.request(READ, 1, 4096, 4096);
      assertEquals(await b.reply(), [1, 0]);
      assertBytesEqual((await b.exact(4096))!, f.mem.subarray(4096, 8192), "B still served");
      await b.request(DISC, 2, 0, 0);
      assertEquals(await b.exact(1), null, "closed after DISC");

      // Malformed handshakes.
      const c = await rawConnect(sock);
      conns.push(c);
      await c.hello(0xffffffff);
      assertEquals(await c.exact(1), null, "unknown client flags close");
      const d = await rawConnect(sock);
      conns.push(d);
      await d.hello(3);
      await d.write(new Uint8Array(16).fill(0xee));
      assertEquals(await d.exact(1), null, "bad option magic closes");
      const e = await rawConnect(sock);
      conns.push(e);
      await e.hello(3);
      await e.option(1, enc.encode("nope"));
      assertEquals(await e.exact(1), null, "unknown EXPORT_NAME closes");
      const g = await rawConnect(sock);
      conns.push(g);
      await g.hello(3);
      await g.option(2); // ABORT
      assertEquals((await g.optionReply())[1], 1);
      assertEquals(await g.exact(1), null, "closed after ABORT");

      // And real clients are still served.
      const r = await qemuIo(server.address, ["read -v 0 16"], ["-r"]);
      assertBytesEqual(parseHexdump(r.out), f.img.subarray(0, 16), "qemu-io after abuse");
    } finally {
      for (const c of conns) c.close();
      await server.close();
      await f.done();
    }
  },
}));

Deno.test(needs(QEMU, {
  name: "serveNbd bounds-checks writes on a writable export",
  async fn() {
    const f = await fixture();
    const sock = `${f.dir}/rw.sock`;
    const server = await serveNbd(f.archive, {
      socket: sock,
      readOnly: false,
      overlay: `${f.dir}/o.hxo`,
    });
    const a = await rawConnect(sock);
    try {
      await a.hello(3);
      await a.option(7, infoRequest(""));
      for (;;) if ((await a.optionReply())[1] === 1) break;
      await a.request(WRITE, 1, 8 * MiB - 100, 200); // past the end
      await a.write(new Uint8Array(200));
      assertEquals(await a.reply(), [1, ENOSPC]);
      await a.request(WRITE_ZEROES, 2, 8 * MiB, 1);
      assertEquals(await a.reply(), [2, ENOSPC]);
      const big = 32 * MiB + 1;
      await a.request(WRITE, 3, 0, big); // too long: payload dropped
      await a.write(new Uint8Array(big));
      assertEquals(await a.reply(), [3, EINVAL]);
      // Pipelined write then read: the read sees the write.
      await a.request(WRITE, 4, 10, 5);
      await a.write(enc.encode("hello"));
      await a.request(READ, 5, 8, 9);
      assertEquals(await a.reply(), [4, 0]);
      assertEquals(await a.reply(), [5, 0]);
      const want = f.img.slice(8, 17);
      want.set(enc.encode("hello"), 2);
      assertBytesEqual((await a.exact(9))!, want, "read after write");
      await a.request(FLUSH, 6, 0, 0);
      assertEquals(await a.reply(), [6, 0]);
      // close() ends a connection that is still open, and can be called again.
      await server.close();
      assertEquals(await a.exact(1), null, "server closed the connection");
    } finally {
      a.close();
      await server.close();
      await f.done();
    }
  },
}));

Deno.test(needs(QEMU, {
  name: "serveNbd refuses reads longer than 32 MiB, even inside the export",
  async fn() {
    const [dir, done, keep] = await tempDir("hexz-nbd-");
    const disk = new Uint8Array(40 * MiB);
    disk.set(pseudoRandom(1000, 12), 32 * MiB - 500);
    const archive = keep(await open(await packBytes(dir, disk)));
    const server = keep(await serveNbd(archive, { socket: `${dir}/big.sock`, readOnly: true }));
    const a = await rawConnect(`${dir}/big.sock`);
    try {
      await a.hello(3);
      await a.option(7, infoRequest(""));
      for (;;) if ((await a.optionReply())[1] === 1) break;
      await a.request(READ, 1, 0, 32 * MiB + 1);
      assertEquals(await a.reply(), [1, EINVAL]);
      await a.request(READ, 2, 0, 32 * MiB);
      assertEquals(await a.reply(), [2, 0]);
      assertBytesEqual((await a.exact(32 * MiB))!, disk.subarray(0, 32 * MiB), "32 MiB read");
    } finally {
      a.close();
      await server.close();
      archive.close();
      await done();
    }
  },
}));

Deno.test("serveNbd refuses a writable export without an overlay", async () => {
  const f = await fixture();
  try {
    let err: unknown = null;
    await serveNbd(f.archive, { socket: `${f.dir}/x.sock`, readOnly: false }).catch((e) => {
      err = e;
    });
    assertMatch(String(err), /needs an overlay/);
  } finally {
    await f.done();
  }
});

Deno.test(needs(QEMU, {
  name: "serveNbd: an export whose size is not a multiple of 512 converts exactly",
  async fn() {
    const [dir, cleanup, keep] = await tempDir("hexz-nbd-");
    const img = pseudoRandom(3_000_000, 21);
    const path = await packBytes(dir, img);
    const archive = keep(await open(path));
    const server = await serveNbd(archive, { socket: `${dir}/s.sock`, readOnly: true });
    try {
      const conv = await run(
        "qemu-img",
        "convert",
        "-f",
        "raw",
        "-O",
        "raw",
        server.address,
        `${dir}/o.raw`,
      );
      assertEquals(conv.code, 0, conv.err);
      // QEMU sees the size rounded up to a sector; the tail beyond the image reads as zeros.
      const out = await Deno.readFile(`${dir}/o.raw`);
      assertBytesEqual(out.subarray(0, img.length), img);
      assert(out.subarray(img.length).every((b) => b === 0), "tail is zero");
    } finally {
      await server.close();
      archive.close();
      await cleanup();
    }
  },
}));

Deno.test(needs(QEMU, {
  name:
    "serveNbd structured replies: zero blocks as holes, base:allocation block status, DF and REQ_ONE",
  async fn() {
    const f = await fixture();
    const sock = `${f.dir}/structured.sock`;
    const server = await serveNbd(f.archive, { socket: sock, readOnly: true });
    const a = await rawConnect(sock);
    try {
      await a.hello(3);
      await a.option(8); // STRUCTURED_REPLY
      assertEquals((await a.optionReply()).slice(0, 2), [8, 1]);
      await a.option(9, metaRequest("", [])); // LIST_META_CONTEXT: everything
      const [, t1, listed] = await a.optionReply();
      assertEquals([t1, new TextDecoder().decode(listed.subarray(4))], [4, BASE_ALLOCATION]);
      assertEquals((await a.optionReply())[1], 1);
      await a.option(10, metaRequest("nope", [BASE_ALLOCATION]));
      assertEquals((await a.optionReply()).slice(0, 2), [10, ERR_UNKNOWN]);
      await a.option(10, new Uint8Array(5));
      assertEquals((await a.optionReply()).slice(0, 2), [10, ERR_INVALID]);
      await a.option(10, metaRequest("", ["qemu:dirty-bitmap:x", BASE_ALLOCATION]));
      const [, t2, chosen] = await a.optionReply();
      assertEquals(t2, 4);
      assertEquals(new DataView(chosen.buffer).getUint32(0), 1, "context id");
      assertEquals(new TextDecoder().decode(chosen.subarray(4)), BASE_ALLOCATION);
      assertEquals((await a.optionReply())[1], 1);
      await a.option(7, infoRequest(""));
      const [, , info] = await a.optionReply();
      assertEquals(new DataView(info.buffer).getUint16(10) & 128, 128, "SEND_DF");
      while ((await a.optionReply())[1] !== 1);

      // A read across the zero MiB at 2 MiB: data, a hole, data; the last chunk is DONE.
      const from = 2 * MiB - 4096, len = MiB + 8192;
      await a.request(READ, 1, from, len);
      const got = new Uint8Array(len).fill(0xff);
      const kinds: string[] = [];
      for (;;) {
        const c = await a.chunk();
        assertEquals(c.cookie, 1);
        const dv = new DataView(c.payload.buffer);
        const at = Number(dv.getBigUint64(0)) - from;
        if (c.type === 1) {
          got.set(c.payload.subarray(8), at);
          kinds.push(`data ${c.payload.length - 8}`);
        } else {
          assertEquals(c.type, 2);
          got.fill(0, at, at + dv.getUint32(8));
          kinds.push(`hole ${dv.getUint32(8)}`);
        }
        if (c.flags & 1) break;
      }
      assertEquals(kinds, ["data 4096", `hole ${MiB}`, "data 4096"]);
      assertBytesEqual(got, f.img.subarray(from, from + len), "read with a hole");
      // Don't fragment: one data chunk, zeros included.
      await a.request(READ, 2, from, len, 4);
      const df = await a.chunk();
      assertEquals([df.cookie, df.type, df.flags], [2, 1, 1]);
      assertBytesEqual(df.payload.subarray(8), f.img.subarray(from, from + len), "DF read");

      // Block status of the whole disk.
      await a.request(7, 3, 0, 8 * MiB);
      const bs = await a.chunk();
      assertEquals([bs.cookie, bs.type, bs.flags], [3, 5, 1]);
      const bv = new DataView(bs.payload.buffer);
      assertEquals(bv.getUint32(0), 1);
      const desc: [number, number][] = [];
      for (let o = 4; o < bs.payload.length; o += 8) {
        desc.push([bv.getUint32(o), bv.getUint32(o + 4)]);
      }
      const K64 = 65536;
      assertEquals(desc, [
        [2 * MiB, 0],
        [MiB, 3],
        [3 * MiB, 0],
        [MiB, 3],
        [K64, 0], // the short random run at 7 MiB + 100
        [MiB - K64, 3],
      ]);
      // REQ_ONE: a single descriptor, from an unaligned start.
      await a.request(7, 4, 2 * MiB + 512, 4 * MiB, 8);
      const one = await a.chunk();
      const ov = new DataView(one.payload.buffer);
      assertEquals(one.payload.length, 12);
      assertEquals([ov.getUint32(4), ov.getUint32(8)], [MiB - 512, 3]);
      // Errors of reads and block status are structured; a write's is simple.
      await a.request(READ, 5, 8 * MiB - 10, 20);
      const e1 = await a.chunk();
      assertEquals([e1.cookie, e1.type, e1.flags, new DataView(e1.payload.buffer).getUint32(0)], [
        5,
        32769,
        1,
        EINVAL,
      ]);
      await a.request(7, 6, 8 * MiB, 4096);
      const e2 = await a.chunk();
      assertEquals([e2.cookie, e2.type, new DataView(e2.payload.buffer).getUint32(0)], [
        6,
        32769,
        EINVAL,
      ]);
      await a.request(WRITE_ZEROES, 7, 0, 4096);
      assertEquals(await a.reply(), [7, EPERM]);
    } finally {
      a.close();
      await server.close();
      await f.done();
    }
  },
}));

Deno.test(needs(QEMU, {
  name: "qemu-img map and convert over NBD see zero blocks as holes, and overlay writes as data",
  async fn() {
    const f = await fixture();
    const sock = `${f.dir}/map.sock`;
    const server = await serveNbd(f.archive, {
      socket: sock,
      readOnly: false,
      overlay: `${f.dir}/w.hxo`,
    });
    try {
      const map = async () => {
        const r = await run("qemu-img", "map", "--output=json", server.address);
        assertEquals(r.code, 0, r.err);
        return (JSON.parse(r.out) as { start: number; length: number; zero: boolean }[])
          .map((e) => [e.start, e.length, e.zero]);
      };
      const K64 = 65536;
      assertEquals(await map(), [
        [0, 2 * MiB, false],
        [2 * MiB, MiB, true],
        [3 * MiB, 3 * MiB, false],
        [6 * MiB, MiB, true],
        [7 * MiB, K64, false],
        [7 * MiB + K64, MiB - K64, true],
      ]);
      // A write into the zero MiB at 6 MiB makes that 4 KiB data.
      const w = await qemuIo(server.address, ["write -P 0x77 6291456 4096"]);
      assertIoOk(w, "write");
      // (the data before it and the write join into one extent).
      assertEquals((await map()).slice(2), [
        [3 * MiB, 3 * MiB + 4096, false],
        [6 * MiB + 4096, MiB - 4096, true],
        [7 * MiB, K64, false],
        [7 * MiB + K64, MiB - K64, true],
      ]);
      const out = `${f.dir}/converted.raw`;
      const c = await run("qemu-img", "convert", "-O", "raw", server.address, out);
      assertEquals(c.code, 0, c.err);
      const want = f.img.slice();
      want.fill(0x77, 6 * MiB, 6 * MiB + 4096);
      assertBytesEqual(await Deno.readFile(out), want, "converted");
    } finally {
      await server.close();
      await f.done();
    }
  },
}));

Deno.test("block status over an overlay with thousands of writes stays within 4096 descriptors", async () => {
  const [dir, done, keep] = await tempDir();
  const MiB = 1 << 20;
  const path = await packBytes(dir, new Uint8Array(40 * MiB)); // all zero blocks
  const archive = keep(await open(path));
  const ovPath = `${dir}/o.hxo`;
  const ov = keep(await openOverlay(ovPath, archive, { create: true }));
  for (let i = 0; i < 2200; i++) await ov.write("disk", i * 8192, new Uint8Array([1]));
  await ov.flush();
  ov.close?.();
  const sock = `${dir}/bs.sock`;
  const server = keep(await serveNbd(archive, { socket: sock, readOnly: true, overlay: ovPath }));
  const a = await rawConnect(sock);
  try {
    await a.hello(3);
    await a.option(8); // STRUCTURED_REPLY
    assertEquals((await a.optionReply()).slice(0, 2), [8, 1]);
    await a.option(10, metaRequest("", [BASE_ALLOCATION]));
    while ((await a.optionReply())[1] !== 1);
    await a.option(7, infoRequest(""));
    while ((await a.optionReply())[1] !== 1);
    await a.request(7, 1, 0, 40 * MiB);
    const bs = await a.chunk();
    const bv = new DataView(bs.payload.buffer, bs.payload.byteOffset);
    const n = (bs.payload.length - 4) / 8;
    assert(n > 0 && n <= 4096, `${n} descriptors`);
    // A prefix of the range, alternating written (data) and untouched (hole) 4 KiB blocks.
    for (let k = 0; k < n; k++) {
      assertEquals(
        [bv.getUint32(4 + 8 * k), bv.getUint32(8 + 8 * k)],
        [4096, k % 2 ? 3 : 0],
        `descriptor ${k}`,
      );
    }
  } finally {
    a.close();
    await server.close();
    archive.close();
    await done();
  }
});
