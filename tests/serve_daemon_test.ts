/**
 * `hexz serve --daemon`: returns once the server listens, prints where and the pid; the server
 * keeps running detached until SIGTERM. A server that cannot start makes the parent fail with
 * the child's own error line.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { packBytes } from "./_archive.ts";
import { hexz } from "./_cli.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";

const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-run"];

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

async function stop(pid: number) {
  if (!alive(pid)) return;
  Deno.kill(pid, "SIGTERM");
  const until = Date.now() + 10_000;
  while (alive(pid)) {
    if (Date.now() > until) {
      Deno.kill(pid, "SIGKILL");
      throw new Error(`server ${pid} ignored SIGTERM`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test(needs(["curl", "qemu-img"], {
  name: "serve --daemon: HTTP and NBD servers run detached until SIGTERM",
  async fn() {
    const [dir, done] = await tempDir();
    const pids: number[] = [];
    try {
      const disk = pseudoRandom(300_000, 5);
      const p = await packBytes(dir, disk);
      let r = await hexz(["serve", p, "--port", "0", "--daemon"], { perms: PERMS });
      assertEquals(r.code, 0, r.err);
      const m = /serving .* at (http:\/\/[^ ]+) .*\(pid (\d+)\)/.exec(r.err);
      assert(m, r.err);
      pids.push(Number(m[2]));
      const c = await new Deno.Command("curl", { args: ["-s", "-r", "100-199", `${m[1]}/disk`] })
        .output();
      assertEquals(c.stdout, disk.subarray(100, 200));
      await stop(Number(m[2]));
      const after = await new Deno.Command("curl", { args: ["-s", `${m[1]}/disk`] }).output();
      assert(!after.success, "the server is gone after SIGTERM");

      const sock = `${dir}/nbd.sock`;
      r = await hexz(["serve", p, "--nbd", "--socket", sock, "--daemon"], { perms: PERMS });
      assertEquals(r.code, 0, r.err);
      const n = /over NBD at (\S+) \(pid (\d+)\)/.exec(r.err);
      assert(n, r.err);
      pids.push(Number(n[2]));
      const info = await new Deno.Command("qemu-img", { args: ["info", "-f", "raw", n[1]] })
        .output();
      assertEquals(info.code, 0, new TextDecoder().decode(info.stderr));
      assertMatch(new TextDecoder().decode(info.stdout), /virtual size/);
      await stop(Number(n[2]));
    } finally {
      for (const pid of pids) await stop(pid).catch(() => {});
      await done();
    }
  },
}));

Deno.test("serve --daemon fails with the server's own error when it cannot listen", async () => {
  const [dir, done] = await tempDir();
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const p = await packBytes(dir, pseudoRandom(10_000, 6));
    const port = (busy.addr as Deno.NetAddr).port;
    const r = await hexz(["serve", p, "--port", String(port), "--daemon"], { perms: PERMS });
    assertEquals(r.code, 1);
    assertEquals(r.err.trim().split("\n").length, 1);
    assertMatch(r.err, /cannot listen on 127\.0\.0\.1:\d+: address already in use/i);
  } finally {
    busy.close();
    await done();
  }
});

Deno.test(needs(["curl"], {
  name: "serve of an encrypted archive: refused without the password, served with --password-file",
  async fn() {
    const [dir, done] = await tempDir();
    const pids: number[] = [];
    try {
      const disk = pseudoRandom(200_000, 8);
      const p = await packBytes(dir, disk, { encrypt: { password: "s3cret", kdf: "pbkdf2" } });
      let r = await hexz(["serve", p, "--port", "0"], { perms: PERMS });
      assertEquals(r.code, 1, r.err);
      assertMatch(r.err, /^hexz: .*archive is encrypted: give the password/);
      await Deno.writeTextFile(`${dir}/pw`, "s3cret\n");
      r = await hexz(["serve", p, "--port", "0", "--daemon", "--password-file", `${dir}/pw`], {
        perms: PERMS,
      });
      assertEquals(r.code, 0, r.err);
      const m = /serving .* at (http:\/\/[^ ]+) .*\(pid (\d+)\)/.exec(r.err);
      assert(m, r.err);
      pids.push(Number(m[2]));
      const c = await new Deno.Command("curl", {
        args: ["-s", "-f", "-r", "1000-1999", `${m[1]}/disk`],
      }).output();
      assertEquals(c.code, 0);
      assertEquals(c.stdout, disk.subarray(1000, 2000));
      await Deno.writeTextFile(`${dir}/bad`, "nope\n");
      r = await hexz(["serve", p, "--port", "0", "--password-file", `${dir}/bad`], {
        perms: PERMS,
      });
      assertEquals(r.code, 1);
      assertMatch(r.err, /wrong password/);
    } finally {
      for (const pid of pids) await stop(pid).catch(() => {});
      await done();
    }
  },
}));

Deno.test(needs(["qemu-io"], {
  name: "serve --nbd --rw keeps its writes in <archive>.hxo by default",
  async fn() {
    const [dir, done] = await tempDir();
    const pids: number[] = [];
    try {
      const disk = pseudoRandom(300_000, 9);
      const p = await packBytes(dir, disk);
      const sock = `${dir}/rw.sock`;
      const r = await hexz(["serve", p, "--nbd", "--rw", "--socket", sock, "--daemon"], {
        perms: PERMS,
      });
      assertEquals(r.code, 0, r.err);
      const ov = p.replace(/\.hxz$/, ".hxo");
      const n = /over NBD at (\S+) \(writes kept in (\S+)\) \(pid (\d+)\)/.exec(r.err);
      assert(n, r.err);
      assertEquals(n[2], ov);
      pids.push(Number(n[3]));
      const w = await new Deno.Command("qemu-io", {
        args: ["-f", "raw", n[1], "-c", "write -P 0xab 4096 4096"],
      }).output();
      assertEquals(w.code, 0, new TextDecoder().decode(w.stderr));
      await stop(Number(n[3]));
      // The writes are in the overlay beside the archive, which is unchanged.
      const o = await hexz(["overlay", ov, "--base", p, "--json"]);
      assertEquals(o.code, 0, o.err);
      assertEquals(JSON.parse(o.out).streams[0].changedBlocks, 1);
    } finally {
      for (const pid of pids) await stop(pid).catch(() => {});
      await done();
    }
  },
}));

Deno.test(needs(["qemu-io"], {
  name:
    "serve --nbd --rw that no client writes to leaves no overlay behind, and keeps one it found",
  async fn() {
    const [dir, done] = await tempDir();
    const pids: number[] = [];
    try {
      const p = await packBytes(dir, pseudoRandom(300_000, 11));
      const ov = p.replace(/\.hxz$/, ".hxo");
      const sock = `${dir}/rw.sock`;
      const start = async () => {
        const r = await hexz(["serve", p, "--nbd", "--rw", "--socket", sock, "--daemon"], {
          perms: PERMS,
        });
        assertEquals(r.code, 0, r.err);
        const n = /over NBD at (\S+) \(writes kept in (\S+)\) \(pid (\d+)\)/.exec(r.err);
        assert(n, r.err);
        pids.push(Number(n[3]));
        return { uri: n[1], pid: Number(n[3]) };
      };
      const qemuIo = async (uri: string, cmd: string) => {
        const w = await new Deno.Command("qemu-io", { args: ["-f", "raw", uri, "-c", cmd] })
          .output();
        assertEquals(w.code, 0, new TextDecoder().decode(w.stderr));
      };
      let s = await start();
      await qemuIo(s.uri, "read 0 4096");
      await stop(s.pid);
      assertEquals(await Deno.lstat(ov).then(() => "there", () => "gone"), "gone");

      s = await start();
      await qemuIo(s.uri, "write -P 0x11 0 4096");
      await stop(s.pid);
      const size = (await Deno.stat(ov)).size;
      assert(size > 4096, "the overlay holds the write");
      s = await start(); // found there: kept, as it was
      await stop(s.pid);
      assertEquals((await Deno.stat(ov)).size, size);
    } finally {
      for (const pid of pids) await stop(pid).catch(() => {});
      await done();
    }
  },
}));

Deno.test(needs(["qemu-io"], {
  name: "serve --nbd --rw of an encrypted archive takes writes with its password, encrypted",
  async fn() {
    const [dir, done] = await tempDir();
    const pids: number[] = [];
    try {
      const kdf = { name: "argon2id" as const, memoryKiB: 256, iterations: 1, parallelism: 1 };
      const p = await packBytes(dir, pseudoRandom(300_000, 10), {
        encrypt: { password: "pw", kdf },
      });
      const sock = `${dir}/rw.sock`;
      const args = ["serve", p, "--nbd", "--rw", "--socket", sock, "--daemon"];
      const env = { HEXZ_PASSWORD: "pw" };
      const r = await hexz(args, { perms: PERMS, env });
      assertEquals(r.code, 0, r.err);
      const n = /over NBD at (\S+) \(writes kept in (\S+)\) \(pid (\d+)\)/.exec(r.err);
      assert(n, r.err);
      pids.push(Number(n[3]));
      const w = await new Deno.Command("qemu-io", {
        args: ["-f", "raw", n[1], "-c", "write -P 0x5a 8192 4096"],
      }).output();
      assertEquals(w.code, 0, new TextDecoder().decode(w.stderr));
      await stop(Number(n[3]));
      // The written block is nowhere in the overlay in the clear.
      const ov = await Deno.readFile(n[2]);
      const block = new Uint8Array(4096).fill(0x5a);
      let found = false;
      for (let i = 4096; i + 4096 <= ov.length && !found; i++) {
        found = ov[i] === 0x5a && ov.subarray(i, i + 4096).every((b, j) => b === block[j]);
      }
      assert(!found, "the written block lies in the overlay in the clear");
      assert(ov.length > 4096 + 4096, "the overlay holds the write");
      // Served again, the write reads back (the daemon's overlay decrypts it).
      const again = await hexz(args, { perms: PERMS, env });
      assertEquals(again.code, 0, again.err);
      const m = /over NBD at (\S+) .*\(pid (\d+)\)/.exec(again.err);
      assert(m, again.err);
      pids.push(Number(m[2]));
      const v = await new Deno.Command("qemu-io", {
        args: ["-f", "raw", m[1], "-c", "read -P 0x5a 8192 4096"],
      }).output();
      const said = new TextDecoder().decode(v.stdout) + new TextDecoder().decode(v.stderr);
      assertEquals(v.code, 0, said);
      assert(!/Pattern verification failed/.test(said), said);
      await stop(Number(m[2]));
    } finally {
      for (const pid of pids) await stop(pid).catch(() => {});
      await done();
    }
  },
}));

Deno.test("serve --daemon and mount --daemon without --allow-run: one line, no stack", async () => {
  const [dir, done] = await tempDir();
  try {
    const p = await packBytes(dir, pseudoRandom(10_000, 10));
    const noRun = ["--allow-read", "--allow-write", "--allow-env", "--allow-net"];
    for (const args of [["serve", p, "--port", "0", "--daemon"], ["mount", p, dir, "--daemon"]]) {
      const r = await hexz(args, { perms: noRun });
      assertEquals([r.code, r.err], [
        1,
        "hexz: --daemon starts a background process: run deno with --allow-run (or leave out --daemon)\n",
      ], args[0]);
    }
  } finally {
    await done();
  }
});
