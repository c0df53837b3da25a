/**
 * `hexz mount` / `hexz unmount` for real: the server runs as a subprocess (reading a mount
 * from the process that serves it would deadlock) and the mount is read with cat, cmp, dd,
 * sha256sum, ls, stat and readlink. Every mount is taken down in `finally`.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { packBytes } from "./_archive.ts";
import { hexz } from "./_cli.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const dec = new TextDecoder();

/** hexz mount does mount(2) of /dev/fuse (root); the mounts are read with these tools. */
const MOUNT = ["fuse", "cmp", "dd", "sha256sum"];

interface Server {
  child: Deno.ChildProcess;
  /** The first line the server printed ("mounted ... at ..."). */
  line: string;
  stderr: Promise<string>;
}

/** Starts `hexz mount ARGS` in the foreground of a subprocess; resolves once it is serving. */
async function serve(args: string[]): Promise<Server> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", "--allow-all", CLI, "mount", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  try {
    while (!text.includes("\n")) {
      const r = await reader.read();
      if (r.done) throw new Error(`mount exited before serving: ${await stderr}`);
      text += r.value;
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  child.stdout.cancel().catch(() => {});
  return { child, line: text.trim(), stderr };
}

async function run(cmd: string, args: string[], stdin?: Uint8Array) {
  const c = new Deno.Command(cmd, {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = c.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const o = await c.output();
  return { code: o.code, stdout: o.stdout, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

async function mounted(mnt: string): Promise<boolean> {
  const text = await Deno.readTextFile("/proc/self/mounts");
  return text.split("\n").some((l) => l.split(" ")[1] === mnt);
}

async function waitUnmounted(mnt: string, ms = 10_000) {
  const end = Date.now() + ms;
  while (await mounted(mnt)) {
    if (Date.now() > end) throw new Error(`${mnt} is still mounted`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Takes down whatever is left: the server and any mount at `mnt`. */
async function teardown(mnt: string, server?: Server) {
  for (let i = 0; i < 4 && await mounted(mnt); i++) await run("fusermount3", ["-uz", mnt]);
  if (server) {
    try {
      server.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await server.child.status;
  }
}

async function sha256Hex(b: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>));
  return [...d].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** `dd` of `length` bytes at `offset` from `file`. */
async function ddRead(file: string, offset: number, length: number): Promise<Uint8Array> {
  const r = await run("dd", [
    `if=${file}`,
    "iflag=skip_bytes,count_bytes",
    `skip=${offset}`,
    `count=${length}`,
    "bs=64K",
    "status=none",
  ]);
  assertEquals(r.code, 0, r.err);
  return r.stdout;
}

function assertSame(a: Uint8Array, b: Uint8Array, what: string) {
  assertEquals(a.length, b.length, `${what}: length`);
  const i = a.findIndex((x, k) => x !== b[k]);
  assertEquals(i, -1, `${what}: first difference at ${i}`);
}

function diskImage(): Uint8Array {
  const disk = new Uint8Array(6 * 1024 * 1024 + 4321);
  disk.set(pseudoRandom(2 * 1024 * 1024, 7), 0);
  disk.set(new TextEncoder().encode("a text region ".repeat(50_000)), 3 * 1024 * 1024);
  disk.set(pseudoRandom(900_000, 8), disk.length - 900_000);
  return disk;
}

Deno.test(needs(MOUNT, {
  name: "mount serves disk and memory byte for byte, read-only; unmount ends the server",
  async fn() {
    const [dir, done] = await tempDir();
    const mnt = `${await Deno.realPath(dir)}/mnt`;
    let server: Server | undefined;
    try {
      await Deno.mkdir(mnt);
      const disk = diskImage();
      const memory = pseudoRandom(1024 * 1024 + 7, 9);
      const archive = await packBytes(dir, disk, { compression: "zstd" }, memory);
      server = await serve([archive, mnt]);
      assertMatch(server.line, /^mounted .* at .*mnt \(read-only\)$/);

      let r = await run("cmp", [`${mnt}/disk`, `${archive}.disk`]);
      assertEquals(r.code, 0, `cmp disk: ${r.out}${r.err}`);
      r = await run("cmp", [`${mnt}/memory`, `${archive}.mem`]);
      assertEquals(r.code, 0, `cmp memory: ${r.out}${r.err}`);
      r = await run("sha256sum", [`${mnt}/disk`]);
      assertEquals(r.out.split(" ")[0], await sha256Hex(disk));

      let seed = 12345;
      const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
      for (let i = 0; i < 12; i++) {
        const len = 1 + rand(300_000);
        const off = rand(disk.length - len);
        assertSame(await ddRead(`${mnt}/disk`, off, len), disk.subarray(off, off + len), `@${off}`);
      }
      const tail = await ddRead(`${mnt}/disk`, disk.length - 100, 1000); // short at the end
      assertSame(tail, disk.subarray(disk.length - 100), "tail");

      r = await run("ls", ["-l", mnt]);
      const sizes = Object.fromEntries(
        r.out.trim().split("\n").slice(1).map((l) => l.split(/\s+/)).map((f) => [f[8], f[4]]),
      );
      assertEquals(sizes, { disk: String(disk.length), memory: String(memory.length) });
      r = await run("stat", ["-c", "%a %F", `${mnt}/disk`]);
      assertEquals(r.out.trim(), "444 regular file");

      r = await run("dd", ["if=/dev/zero", `of=${mnt}/disk`, "count=1", "conv=notrunc"]);
      assert(r.code !== 0, "a write to a read-only mount succeeded");
      assertMatch(r.err, /Read-only file system/);

      const u = await hexz(["unmount", mnt], { perms: ["--allow-all"] });
      assertEquals([u.code, u.err], [0, ""]);
      assertEquals((await server.child.status).code, 0, await server.stderr);
      assert(!await mounted(mnt), "still mounted after hexz unmount");
    } finally {
      await teardown(mnt, server);
      await done();
    }
  },
}));

Deno.test(needs(MOUNT, {
  name:
    "mount shows a directory archive's tree with modes, times, symlinks and hard links; SIGTERM unmounts",
  async fn() {
    const [dir, done] = await tempDir();
    const root = await Deno.realPath(dir);
    const mnt = `${root}/mnt`;
    const src = `${root}/tree`;
    let server: Server | undefined;
    try {
      await Deno.mkdir(mnt);
      await Deno.mkdir(`${src}/etc/deep`, { recursive: true });
      await Deno.writeTextFile(`${src}/etc/hostname`, "hexz-box\n");
      await Deno.writeFile(`${src}/etc/deep/blob.bin`, pseudoRandom(200_000, 3));
      await Deno.writeFile(`${src}/empty`, new Uint8Array(0));
      await Deno.chmod(`${src}/etc/deep/blob.bin`, 0o640);
      await Deno.chmod(`${src}/etc/deep`, 0o750);
      await Deno.utime(`${src}/etc/hostname`, 1_600_000_000, 1_600_000_000);
      await Deno.symlink("deep/blob.bin", `${src}/etc/link`);
      await Deno.link(`${src}/etc/deep/blob.bin`, `${src}/blob-again.bin`); // another directory
      const b = await hexz(["build", src, `${root}/tree.hxz`, "--silent"]);
      assertEquals(b.code, 0, b.err);

      server = await serve([`${root}/tree.hxz`, mnt, "--gid", "4321"]);
      let r = await run("ls", [mnt]);
      assertEquals(r.out.trim().split("\n"), ["disk", "files"]); // no memory stream
      r = await run("cat", [`${mnt}/files/etc/hostname`]);
      assertEquals(r.out, "hexz-box\n");
      r = await run("readlink", [`${mnt}/files/etc/link`]);
      assertEquals(r.out.trim(), "deep/blob.bin");
      r = await run("stat", ["-c", "%a %s %Y", `${mnt}/files/etc/deep/blob.bin`]);
      assertEquals(r.out.trim().split(" ").slice(0, 2), ["640", "200000"]);
      r = await run("stat", ["-c", "%a %F", `${mnt}/files/etc/deep`]);
      assertEquals(r.out.trim(), "750 directory");
      r = await run("stat", ["-c", "%Y %s %u %g", `${mnt}/files/etc/hostname`]);
      assertEquals(r.out.trim(), `1600000000 9 ${Deno.uid()} 4321`);
      r = await run("cmp", [`${mnt}/files/etc/link`, `${src}/etc/deep/blob.bin`]);
      assertEquals(r.code, 0, r.out + r.err);
      // The two names of blob.bin are one inode with two links, as stat and readdir see it.
      r = await run("stat", ["-c", "%i %h %a %s", `${mnt}/files/etc/deep/blob.bin`]);
      const [ino, ...rest] = r.out.trim().split(" ");
      assertEquals(rest, ["2", "640", "200000"]);
      r = await run("stat", ["-c", "%i %h %a %s", `${mnt}/files/blob-again.bin`]);
      assertEquals(r.out.trim(), `${ino} 2 640 200000`);
      r = await run("ls", ["-i", `${mnt}/files`]);
      assertMatch(r.out, new RegExp(`^ *${ino} blob-again\\.bin$`, "m"));
      r = await run("stat", ["-c", "%h", `${mnt}/files/etc/hostname`]);
      assertEquals(r.out.trim(), "1");
      r = await run("diff", ["-r", src, `${mnt}/files`]);
      assertEquals(r.code, 0, r.out + r.err);
      r = await run("cat", [`${mnt}/files/nope`]);
      assertMatch(r.err, /No such file or directory/);

      server.child.kill("SIGTERM");
      assertEquals((await server.child.status).code, 0, await server.stderr);
      assert(!await mounted(mnt), "still mounted after SIGTERM");
    } finally {
      await teardown(mnt, server);
      await done();
    }
  },
}));

Deno.test(needs(MOUNT, {
  name: "mount --rw keeps writes in the overlay across remounts (and --daemon)",
  async fn() {
    const [dir, done] = await tempDir();
    const mnt = `${await Deno.realPath(dir)}/mnt`;
    let server: Server | undefined;
    try {
      await Deno.mkdir(mnt);
      const disk = diskImage();
      const archive = await packBytes(dir, disk);
      server = await serve([archive, mnt, "--rw"]);
      assertMatch(server.line, /\(read-write\)$/);
      const patch = pseudoRandom(10_000, 77);
      const at = 1_234_567;
      let r = await run("dd", [
        `of=${mnt}/disk`,
        "conv=notrunc",
        "oflag=seek_bytes",
        `seek=${at}`,
        "bs=10000",
        "status=none",
      ], patch);
      assertEquals(r.code, 0, r.err);
      assertSame(
        await ddRead(`${mnt}/disk`, at - 10, 10_020),
        (() => {
          const want = disk.slice(at - 10, at + 10_010);
          want.set(patch, 10);
          return want;
        })(),
        "read back",
      );
      r = await run("dd", ["if=/dev/zero", `of=${mnt}/disk`, "count=1"]); // truncates: refused
      assert(r.code !== 0, "truncating the disk succeeded");
      r = await run("dd", [
        "if=/dev/zero",
        `of=${mnt}/disk`,
        "bs=1",
        `seek=${disk.length}`,
        "count=1",
        "conv=notrunc",
      ]);
      assertMatch(r.err, /No space left on device/);

      server.child.kill("SIGTERM");
      assertEquals((await server.child.status).code, 0, await server.stderr);
      server = undefined;
      assert(!await mounted(mnt), "still mounted after SIGTERM");
      const overlay = archive.replace(/\.hxz$/, ".hxo");
      assert((await Deno.stat(overlay)).size > 10_000, "overlay holds the write");

      const d = await hexz(["mount", archive, mnt, "--rw", "--daemon"], {
        perms: ["--allow-all"],
      });
      assertEquals(d.code, 0, d.err);
      assertMatch(d.out, /^mounted .* \(read-write, pid \d+\)\n$/);
      const expected = disk.slice();
      expected.set(patch, at);
      await Deno.writeFile(`${dir}/expected.img`, expected);
      r = await run("cmp", [`${mnt}/disk`, `${dir}/expected.img`]);
      assertEquals(r.code, 0, `after remount: ${r.out}${r.err}`);
      const u = await hexz(["unmount", mnt], { perms: ["--allow-all"] });
      assertEquals([u.code, u.err], [0, ""]);
      await waitUnmounted(mnt);
    } finally {
      await teardown(mnt, server);
      await done();
    }
  },
}));

Deno.test(needs(MOUNT, {
  name: "mount --rw that nothing writes to leaves no overlay behind, and keeps one it found",
  async fn() {
    const [dir, done] = await tempDir();
    const mnt = `${await Deno.realPath(dir)}/mnt`;
    let server: Server | undefined;
    try {
      await Deno.mkdir(mnt);
      const disk = diskImage();
      const archive = await packBytes(dir, disk);
      const overlay = archive.replace(/\.hxz$/, ".hxo");
      server = await serve([archive, mnt, "--rw"]);
      const r = await run("cmp", [`${mnt}/disk`, "-"], disk); // read, never written
      assertEquals(r.code, 0, r.out + r.err);
      server.child.kill("SIGTERM");
      assertEquals((await server.child.status).code, 0, await server.stderr);
      server = undefined;
      assertEquals(await Deno.lstat(overlay).then(() => "there", () => "gone"), "gone");

      // An overlay that was there before the mount stays, written to or not.
      server = await serve([archive, mnt, "--rw"]);
      const w = await run(
        "dd",
        [`of=${mnt}/disk`, "conv=notrunc", "bs=4096", "status=none"],
        pseudoRandom(4096, 3),
      );
      assertEquals(w.code, 0, w.err);
      server.child.kill("SIGTERM");
      assertEquals((await server.child.status).code, 0, await server.stderr);
      server = undefined;
      const size = (await Deno.stat(overlay)).size;
      assert(size > 4096, "the overlay holds the write");
      server = await serve([archive, mnt, "--rw"]);
      server.child.kill("SIGTERM");
      assertEquals((await server.child.status).code, 0, await server.stderr);
      server = undefined;
      assertEquals((await Deno.stat(overlay)).size, size);
    } finally {
      await teardown(mnt, server);
      await done();
    }
  },
}));

Deno.test(needs(MOUNT, {
  name: "mount and unmount errors are one line; a dead mount is reported and detached",
  async fn() {
    const [dir, done] = await tempDir();
    const mnt = `${await Deno.realPath(dir)}/mnt`;
    let server: Server | undefined;
    const perms = { perms: ["--allow-all"] };
    const oneLine = (err: string) => {
      assertEquals(err.trim().split("\n").length, 1, err);
      assertMatch(err, /^hexz: /);
    };
    try {
      await Deno.mkdir(mnt);
      const archive = await packBytes(dir, pseudoRandom(100_000, 5));
      let r = await hexz(["mount", archive, `${dir}/missing`], perms);
      assertEquals(r.code, 1);
      oneLine(r.err);
      assertMatch(r.err, /missing: no such directory/);
      r = await hexz(["unmount", mnt], perms);
      assertEquals(r.code, 1);
      oneLine(r.err);
      assertMatch(r.err, /nothing is mounted here/);

      server = await serve([archive, mnt]);
      server.child.kill("SIGKILL"); // the mount stays, with nobody serving it
      await server.child.status;
      const st = await run("stat", [mnt]);
      assertMatch(st.err, /Transport endpoint is not connected/);
      r = await hexz(["mount", archive, mnt], perms);
      assertEquals(r.code, 1);
      oneLine(r.err);
      assertMatch(r.err, /stale FUSE mount .*hexz unmount/);
      r = await hexz(["unmount", mnt], perms);
      assertEquals(r.code, 0, r.err);
      assertMatch(r.err, /stale FUSE mount \(its server is gone\): detached/);
      assert(!await mounted(mnt), "the dead mount is still there");
      assert((await Deno.stat(mnt)).isDirectory);
      // A second mount would stack on a live one (and the next unmount would bring it back).
      server = await serve([archive, mnt]);
      for (const daemon of [[], ["--daemon"]]) {
        r = await hexz(["mount", archive, mnt, ...daemon], perms);
        assertEquals(r.code, 1, r.err);
        oneLine(r.err);
        assertMatch(r.err, /mnt: already a FUSE mount point .*hexz unmount/);
      }
    } finally {
      await teardown(mnt, server);
      await done();
    }
  },
}));

Deno.test(needs(MOUNT, {
  name: "mount reads an archive from a URL (HTTP range requests)",
  async fn() {
    const [dir, done] = await tempDir();
    const mnt = `${await Deno.realPath(dir)}/mnt`;
    let server: Server | undefined;
    const ac = new AbortController();
    try {
      await Deno.mkdir(mnt);
      const disk = diskImage();
      const archive = await packBytes(dir, disk, { compression: "zstd" });
      const bytes = await Deno.readFile(archive);
      // A plain static file server that answers single byte ranges, as any web server does.
      const http = Deno.serve(
        { port: 0, hostname: "127.0.0.1", signal: ac.signal, onListen() {} },
        (req) => {
          const headers = { "accept-ranges": "bytes", etag: '"v1"' };
          if (req.method === "HEAD") {
            return new Response(null, {
              headers: { ...headers, "content-length": `${bytes.length}` },
            });
          }
          const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("range") ?? "");
          if (!m) return new Response(bytes, { headers });
          const a = Number(m[1]),
            b = m[2] ? Math.min(Number(m[2]), bytes.length - 1) : bytes.length - 1;
          return new Response(bytes.subarray(a, b + 1), {
            status: 206,
            headers: { ...headers, "content-range": `bytes ${a}-${b}/${bytes.length}` },
          });
        },
      );
      const url = `http://127.0.0.1:${http.addr.port}/vm.hxz`;
      server = await serve([url, mnt]);
      assertMatch(server.line, /^mounted http:\/\/127\.0\.0\.1:\d+\/vm\.hxz at /);
      const r = await run("cmp", [`${mnt}/disk`, `${archive}.disk`]);
      assertEquals(r.code, 0, `cmp disk: ${r.out}${r.err}`);
    } finally {
      await teardown(mnt, server);
      ac.abort();
      await done();
    }
  },
}));
