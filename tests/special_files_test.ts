/**
 * What a root file system needs beyond files, directories and links: device nodes, FIFOs and
 * extended attributes (file capabilities, ACLs, user.*), kept by `build`, restored by
 * `extract`, carried through tar both ways, and refused when the table is hostile. Checked
 * with the real tools: getfattr, getcap, setfacl, stat, GNU tar --xattrs.
 */
import { assert, assertEquals, assertMatch, assertThrows } from "./_assert.ts";
import { build, extractTree, flatten, HexzError, open, pack } from "../mod.ts";
import { decodeFileTable, encodeFileTable, type FileEntry } from "../core/format/filetable.ts";
import { blake3 } from "../core/hash/blake3.ts";
import { FEATURE } from "../core/format/constants.ts";
import { hexz } from "./_cli.ts";
import { needs, tempDir } from "./_tools.ts";

const ALL = ["--allow-all"];

/** The `hexz:` lines of a command's stderr (warnings and errors, not its summary). */
function warnings(err: string): string[] {
  return err.split("\n").filter((l) => l.startsWith("hexz:"));
}
const enc = new TextEncoder();

function run(cmd: string, args: string[], cwd?: string): string {
  const r = new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).outputSync();
  const err = new TextDecoder().decode(r.stderr);
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")}: ${err}`);
  return new TextDecoder().decode(r.stdout);
}

/**
 * Every entry under `root` as `ls -l` and getfattr see it: type and mode, owner, device
 * number, size, mtime, link target, and every xattr (hex values, symlinks' own).
 */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (
      const e of [...Deno.readDirSync(rel ? `${root}/${rel}` : root)].sort((a, b) =>
        a.name < b.name ? -1 : 1
      )
    ) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      const st = Deno.lstatSync(`${root}/${p}`);
      const kind = st.isFile
        ? "-"
        : st.isDirectory
        ? "d"
        : st.isSymlink
        ? "l"
        : st.isFifo
        ? "p"
        : st.isCharDevice
        ? "c"
        : "b";
      const dev = st.isCharDevice || st.isBlockDevice ? ` ${st.rdev}` : "";
      const target = st.isSymlink ? ` -> ${Deno.readLinkSync(`${root}/${p}`)}` : "";
      const mtime = st.isSymlink ? "" : ` ${st.mtime?.getTime()}`;
      out[p] = `${kind}${(st.mode! & 0o7777).toString(8)} ${st.uid}:${st.gid}${dev} ${
        st.isFile ? st.size : 0
      }${mtime}${target}`;
      if (st.isDirectory) walk(p);
    }
  };
  walk("");
  // getfattr -h: the symlinks' own attributes; -e hex: binary values as they are.
  const text = run("getfattr", ["-h", "-R", "-d", "-m", "-", "-e", "hex", "."], root);
  let file = "";
  for (const line of text.split("\n")) {
    if (line.startsWith("# file: ")) file = line.slice(8).replace(/^\.\//, "");
    else if (line.includes("=")) out[file] += ` [${line}]`;
  }
  return out;
}

/**
 * A small root file system: a file capability (on a file owned by 1234:5678, its hard link
 * sharing it), a POSIX ACL, user.* xattrs with binary values on a file and a directory, a
 * trusted.* xattr on a symlink itself, a character and a block device, a FIFO and a socket.
 */
function makeRootfs(src: string): void {
  for (const d of ["bin", "etc", "dev", "run"]) Deno.mkdirSync(`${src}/${d}`, { recursive: true });
  Deno.copyFileSync("/bin/true", `${src}/bin/ping`);
  Deno.chownSync(`${src}/bin/ping`, 1234, 5678);
  run("setcap", ["cap_net_raw+ep", `${src}/bin/ping`]);
  Deno.linkSync(`${src}/bin/ping`, `${src}/bin/ping6`);
  Deno.writeTextFileSync(`${src}/etc/shadow`, "root:*:1:0:99999:7:::\n");
  Deno.chmodSync(`${src}/etc/shadow`, 0o640);
  run("setfacl", ["-m", "u:nobody:r", `${src}/etc/shadow`]);
  Deno.writeTextFileSync(`${src}/etc/note`, "hello\n");
  run("setfattr", ["-n", "user.comment", "-v", "a note", `${src}/etc/note`]);
  run("setfattr", ["-n", "user.binary", "-v", "0x00ff0a3d00", `${src}/etc/note`]);
  run("setfattr", ["-n", "user.dir", "-v", "devices here", `${src}/dev`]);
  Deno.symlinkSync("note", `${src}/etc/link`);
  run("setfattr", ["-h", "-n", "trusted.mark", "-v", "on the link", `${src}/etc/link`]);
  run("mknod", ["-m", "666", `${src}/dev/null`, "c", "1", "3"]);
  run("mknod", ["-m", "660", `${src}/dev/loop7`, "b", "7", "7"]);
  Deno.chownSync(`${src}/dev/loop7`, 0, 6);
  run("mkfifo", ["-m", "600", `${src}/run/initctl`]);
  Deno.utimeSync(`${src}/run/initctl`, 1_600_000_000, 1_600_000_000);
  run("python3", ["-c", `import socket; socket.socket(socket.AF_UNIX).bind("${src}/run/sock")`]);
}

/** `makeRootfs`'s tree as it should come back: everything but the socket. */
function expected(src: string): Record<string, string> {
  const s = snapshot(src);
  delete s["run/sock"];
  return s;
}

const TOOLS = ["root", "getfattr", "setfattr", "setcap", "getcap", "setfacl", "mknod", "python3"];

Deno.test(needs(TOOLS, {
  name: "build -> extract keeps devices, FIFOs, capabilities, ACLs and xattrs (getfattr, stat)",
  async fn() {
    const [dirPath, done] = await tempDir();
    const dir = { path: dirPath };
    try {
      const src = `${dir.path}/src`;
      makeRootfs(src);
      const want = expected(src);
      // The capability and the ACL are what make it a working system: they are in the snapshot.
      assertMatch(want["bin/ping"], /security\.capability=0x0100000200200000/);
      assertMatch(want["etc/shadow"], /system\.posix_acl_access=0x/);
      assertMatch(want["dev/null"], /^c666 0:0 259 /);
      const b = await hexz(["build", src, `${dir.path}/r.hxz`], { perms: ALL });
      assertEquals(b.code, 0, b.err);
      // The socket is the one thing left out, with a warning, as tar does.
      assertEquals(warnings(b.err), [`hexz: warning: ${src}/run/sock: socket ignored`]);
      const x = await hexz(["extract", `${dir.path}/r.hxz`, `${dir.path}/out`], { perms: ALL });
      assertEquals([x.code, warnings(x.err)], [0, []]);
      assertEquals(snapshot(`${dir.path}/out`), want);
      // inspect --files lists them as ls -l and tar -tv do: type letter, "+" for xattrs,
      // "major,minor" where the size goes.
      const ls = await hexz(["inspect", `${dir.path}/r.hxz`, "--files"], { perms: ALL });
      assertMatch(ls.out, /^ {2}c0666  +1,3 \S+ \S+ dev\/null$/m);
      assertMatch(ls.out, /^ {2}b0660  +7,7 \S+ \S+ dev\/loop7$/m);
      assertMatch(ls.out, /^ {2}p0600  +0 2020-09-13 12:26:40 run\/initctl$/m);
      assertMatch(ls.out, /^ {2}-0755\+ +\d+ \S+ \S+ bin\/ping$/m);
      assertMatch(ls.out, /^ {2}h0755\+ +\d+ \S+ \S+ bin\/ping6 link to bin\/ping$/m);
      const cat = await hexz(["cat", `${dir.path}/r.hxz`, "--file", "dev/null"], { perms: ALL });
      assertEquals(
        [cat.code, cat.err],
        [2, "hexz: dev/null: is a character device, not a file\n"],
      );
      // getcap reads the capability back, after the owner was set (chown clears it).
      assertMatch(run("getcap", [`${dir.path}/out/bin/ping`]), /cap_net_raw=ep/);
      assertEquals(Deno.statSync(`${dir.path}/out/bin/ping`).nlink, 2);
      // Restored only what a path selects: the devices alone.
      const sel = await hexz(["extract", `${dir.path}/r.hxz`, `${dir.path}/sel`, "dev"], {
        perms: ALL,
      });
      assertEquals(sel.code, 0, sel.err);
      assertEquals(
        Object.keys(snapshot(`${dir.path}/sel`)),
        ["dev", "dev/loop7", "dev/null"],
      );
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(TOOLS, {
  name: "build --no-xattrs leaves them out quietly; without --allow-ffi build says so in one line",
  async fn() {
    const [dirPath, done] = await tempDir();
    const dir = { path: dirPath };
    try {
      const src = `${dir.path}/src`;
      makeRootfs(src);
      Deno.removeSync(`${src}/run/sock`);
      const quiet = await hexz(["build", src, `${dir.path}/n.hxz`, "--no-xattrs"], { perms: ALL });
      assertEquals([quiet.code, warnings(quiet.err)], [0, []]);
      const plain = await hexz(["build", src, `${dir.path}/p.hxz`]); // no --allow-ffi
      assertEquals(plain.code, 0, plain.err);
      assertEquals(warnings(plain.err), [
        "hexz: warning: extended attributes not read: that needs the --allow-ffi permission (or --no-xattrs)",
      ]);
      for (const name of ["n", "p"]) {
        const a = await open(`${dir.path}/${name}.hxz`);
        try {
          const { fileTable } = await import("../mod.ts");
          const t = (await fileTable(a))!;
          assert(t.every((e) => !e.xattrs), `${name}: no xattrs`);
          // Devices and FIFOs need no FFI to be listed.
          assertEquals(
            t.filter((e) => e.major !== undefined).map((e) => [e.path, e.major, e.minor]),
            [["dev/loop7", 7, 7], ["dev/null", 1, 3]],
          );
        } finally {
          a.close();
        }
      }
      // Extracting without --allow-ffi: the nodes cannot be made, the rest is restored, one
      // warning per kind and a failed exit as tar's for nodes it cannot make.
      const y = await hexz(["extract", `${dir.path}/p.hxz`, `${dir.path}/o1`]);
      assertEquals(y.code, 1);
      assertEquals(warnings(y.err), [
        "hexz: warning: 1 block device not created: needs the --allow-ffi permission",
        "hexz: warning: 1 character device not created: needs the --allow-ffi permission",
        "hexz: warning: 1 FIFO not created: needs the --allow-ffi permission",
        `hexz: ${dir.path}/o1: extracted without 3 entries`,
      ]);
      assert(Deno.statSync(`${dir.path}/o1/etc/note`).isFile);
      // Xattrs in the archive and no --allow-ffi to set them: one line per namespace, and the
      // exit status tells only of the nodes.
      const b = await hexz(["build", src, `${dir.path}/x.hxz`, "-q"], { perms: ALL });
      assertEquals(b.code, 0, b.err);
      const z = await hexz(["extract", `${dir.path}/x.hxz`, `${dir.path}/o2`]);
      assertEquals(z.code, 1);
      const why = "needs the --allow-ffi permission";
      assertEquals(warnings(z.err).sort(), [
        `hexz: ${dir.path}/o2: extracted without 3 entries`,
        `hexz: warning: 1 FIFO not created: ${why}`,
        `hexz: warning: 1 block device not created: ${why}`,
        `hexz: warning: 1 character device not created: ${why}`,
        `hexz: warning: security.* extended attributes not set (1 of them): ${why}`,
        `hexz: warning: system.* extended attributes not set (1 of them): ${why}`,
        `hexz: warning: trusted.* extended attributes not set (1 of them): ${why}`,
        `hexz: warning: user.* extended attributes not set (3 of them): ${why}`,
      ]);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs([...TOOLS, "setpriv"], {
  name:
    "extract as a user who cannot mknod or set security.*: one warning per kind and exit 1, as GNU tar",
  async fn() {
    const [dirPath, done] = await tempDir();
    const dir = { path: dirPath };
    try {
      const src = `${dir.path}/src`;
      makeRootfs(src);
      Deno.removeSync(`${src}/run/sock`);
      assertEquals((await hexz(["build", src, `${dir.path}/r.hxz`], { perms: ALL })).code, 0);
      Deno.chmodSync(dir.path, 0o755);
      Deno.chmodSync(`${dir.path}/r.hxz`, 0o644);
      Deno.mkdirSync(`${dir.path}/user`);
      Deno.chownSync(`${dir.path}/user`, 65534, 65534);
      const asNobody = (args: string[]) =>
        new Deno.Command("setpriv", {
          args: ["--reuid=65534", "--regid=65534", "--clear-groups", ...args],
          stdout: "piped",
          stderr: "piped",
          env: { HOME: dir.path, NO_COLOR: "1" },
        }).output();
      const cli = new URL("../cli.ts", import.meta.url).pathname;
      const p = await asNobody([
        Deno.execPath(),
        "run",
        "-q",
        "--allow-all",
        "--cached-only",
        cli,
        "extract",
        `${dir.path}/r.hxz`,
        `${dir.path}/user/out`,
      ]);
      const err = new TextDecoder().decode(p.stderr);
      assertEquals(p.code, 1, err);
      assertEquals(
        err.trim().split("\n").sort(),
        [
          "hexz: warning: 1 block device not created: Operation not permitted (needs root)",
          "hexz: warning: 1 character device not created: Operation not permitted (needs root)",
          "hexz: warning: security.* extended attributes not set (1 of them): Operation not permitted (needs root)",
          "hexz: warning: trusted.* extended attributes not set (1 of them): Operation not permitted (needs root)",
          `hexz: ${dir.path}/user/out: extracted without 2 entries`,
        ].sort(),
      );
      // GNU tar on the same tree, as the same user: it fails for the devices (exit 2) and only
      // warns for the capability.
      run("tar", ["--xattrs", "--xattrs-include=*", "-cf", `${dir.path}/r.tar`, "-C", src, "."]);
      Deno.chmodSync(`${dir.path}/r.tar`, 0o644);
      Deno.mkdirSync(`${dir.path}/user/tar`);
      Deno.chownSync(`${dir.path}/user/tar`, 65534, 65534);
      const t = await asNobody([
        "tar",
        "--xattrs",
        "--xattrs-include=*",
        "-xf",
        `${dir.path}/r.tar`,
        "-C",
        `${dir.path}/user/tar`,
      ]);
      assertEquals(t.code, 2);
      // What a user can have is there: the FIFO, the files, user.* xattrs and the ACL.
      const got = snapshot(`${dir.path}/user/out`);
      assertEquals(got["run/initctl"].slice(0, 5), "p600 ");
      assertMatch(got["etc/note"], /user\.comment=0x61206e6f7465/);
      assertMatch(got["etc/shadow"], /system\.posix_acl_access/);
      assert(!("dev/null" in got));
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(TOOLS, {
  name: "a thin build and its flattened copy keep devices and xattrs",
  async fn() {
    const [dirPath, done] = await tempDir();
    const dir = { path: dirPath };
    try {
      const src = `${dir.path}/src`;
      makeRootfs(src);
      Deno.removeSync(`${src}/run/sock`);
      await build({ source: src, output: `${dir.path}/v1.hxz` });
      Deno.writeTextFileSync(`${src}/etc/new`, "added in v2\n");
      run("setfattr", ["-n", "user.v", "-v", "2", `${src}/etc/new`]);
      const base = await open(`${dir.path}/v1.hxz`);
      try {
        await build({ source: src, output: `${dir.path}/v2.hxz`, base });
      } finally {
        base.close();
      }
      const v2 = await open(`${dir.path}/v2.hxz`);
      try {
        assert(v2.header.features & FEATURE.thin, "v2 is thin");
        await flatten(v2, { output: `${dir.path}/flat.hxz` });
      } finally {
        v2.close();
      }
      Deno.removeSync(`${dir.path}/v1.hxz`); // the flattened copy needs no parent
      const flat = await open(`${dir.path}/flat.hxz`);
      try {
        const r = await extractTree(flat, `${dir.path}/out`);
        assertEquals(r.notCreated, 0);
      } finally {
        flat.close();
      }
      assertEquals(snapshot(`${dir.path}/out`), expected(src));
    } finally {
      await done();
    }
  },
}));

Deno.test(needs([...TOOLS, "tar"], {
  name: "convert: devices, FIFOs and xattrs to a tar GNU tar --xattrs restores, and back from one",
  async fn() {
    const [dirPath, done] = await tempDir();
    const dir = { path: dirPath };
    try {
      const src = `${dir.path}/src`;
      makeRootfs(src);
      Deno.removeSync(`${src}/run/sock`);
      const want = expected(src);
      assertEquals((await hexz(["build", src, `${dir.path}/r.hxz`], { perms: ALL })).code, 0);
      // Out: GNU tar lists the devices as tar -tv does and restores every xattr.
      const out = await hexz(["convert", `${dir.path}/r.hxz`, `${dir.path}/r.tar`], { perms: ALL });
      assertEquals(out.code, 0, out.err);
      const listing = run("tar", ["-tvf", `${dir.path}/r.tar`]);
      assertMatch(listing, /^crw-rw-rw- 0\/0 +1,3 .* dev\/null$/m);
      assertMatch(listing, /^brw-rw---- 0\/6 +7,7 .* dev\/loop7$/m);
      assertMatch(listing, /^prw------- 0\/0 +0 .* run\/initctl$/m);
      Deno.mkdirSync(`${dir.path}/by-tar`);
      run("tar", [
        "--xattrs",
        "--xattrs-include=*",
        "-xpf",
        `${dir.path}/r.tar`,
        "-C",
        `${dir.path}/by-tar`,
      ]);
      assertEquals(snapshot(`${dir.path}/by-tar`), want);
      assertMatch(run("getcap", [`${dir.path}/by-tar/bin/ping`]), /cap_net_raw=ep/);
      // In: GNU tar --xattrs writes SCHILY.xattr records (binary values) and ustar devices.
      run("tar", ["--xattrs", "--xattrs-include=*", "-cf", `${dir.path}/g.tar`, "-C", src, "."]);
      const inn = await hexz(["convert", `${dir.path}/g.tar`, `${dir.path}/g.hxz`], { perms: ALL });
      assertEquals(inn.code, 0, inn.err);
      const x = await hexz(["extract", `${dir.path}/g.hxz`, `${dir.path}/from-tar`], {
        perms: ALL,
      });
      assertEquals([x.code, warnings(x.err)], [0, []]);
      assertEquals(snapshot(`${dir.path}/from-tar`), want);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs([...TOOLS, "fuse", "fusermount3", "stat"], {
  name: "mount shows devices and FIFOs with their numbers, and answers getfattr and getcap",
  async fn() {
    const [dirPath, done] = await tempDir();
    const root = Deno.realPathSync(dirPath);
    const mnt = `${root}/mnt`;
    const mountedAt = () =>
      Deno.readTextFileSync("/proc/self/mounts").split("\n").some((l) => l.split(" ")[1] === mnt);
    try {
      const src = `${root}/src`;
      makeRootfs(src);
      Deno.removeSync(`${src}/run/sock`);
      const want = expected(src);
      assertEquals((await hexz(["build", src, `${root}/r.hxz`], { perms: ALL })).code, 0);
      Deno.mkdirSync(mnt);
      const m = await hexz(["mount", `${root}/r.hxz`, mnt, "--daemon"], { perms: ALL });
      assertEquals(m.code, 0, m.err);
      // Everything as the tree had it: types, device numbers, owners, and every xattr
      // (getfattr -d lists them with listxattr, then reads each with getxattr).
      assertEquals(snapshot(`${mnt}/files`), want);
      assertEquals(
        run("stat", ["-c", "%F %t,%T %a", `${mnt}/files/dev/null`, `${mnt}/files/dev/loop7`]),
        "character special file 1,3 666\nblock special file 7,7 660\n",
      );
      assertEquals(run("stat", ["-c", "%F", `${mnt}/files/run/initctl`]), "fifo\n");
      assertMatch(run("getcap", [`${mnt}/files/bin/ping`]), /cap_net_raw=ep/);
      assertMatch(run("getcap", [`${mnt}/files/bin/ping6`]), /cap_net_raw=ep/);
      assertMatch(run("getfacl", ["-c", `${mnt}/files/etc/shadow`]), /^user:nobody:r--$/m);
      // A name the entry does not have: ENODATA, as getfattr reports it.
      const missing = new Deno.Command("getfattr", {
        args: ["-n", "user.none", `${mnt}/files/etc/note`],
        stderr: "piped",
      }).outputSync();
      assertEquals(missing.code, 1);
      assertMatch(new TextDecoder().decode(missing.stderr), /No such attribute/);
      // The size probe and ERANGE: a value read into a buffer too small fails, the right
      // size works (Python's os.getxattr starts small and grows on ERANGE, so ask libc).
      const probe = run("python3", [
        "-c",
        `import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
p = b"${mnt}/files/etc/note"; n = b"user.comment"
size = libc.lgetxattr(p, n, None, 0)
small = ctypes.create_string_buffer(size - 1)
r = libc.lgetxattr(p, n, small, size - 1); e = ctypes.get_errno()
buf = ctypes.create_string_buffer(size)
ok = libc.lgetxattr(p, n, buf, size)
lsize = libc.llistxattr(p, None, 0)
lsmall = libc.llistxattr(p, ctypes.create_string_buffer(lsize - 1), lsize - 1); le = ctypes.get_errno()
print(size, r, os.strerror(e), ok, buf.raw.decode(), lsize, lsmall, os.strerror(le))`,
      ]);
      assertEquals(
        probe.trim(),
        "6 -1 Numerical result out of range 6 a note 25 -1 Numerical result out of range",
      );
      const u = await hexz(["unmount", mnt], { perms: ALL });
      assertEquals(u.code, 0, u.err);
    } finally {
      for (let i = 0; i < 4 && mountedAt(); i++) {
        new Deno.Command("fusermount3", { args: ["-uz", mnt] }).outputSync();
      }
      await done();
    }
  },
}));

// --- hostile tables -------------------------------------------------------------------------

const BASE: FileEntry = {
  path: "f",
  type: "file",
  mode: 0o644,
  mtimeMs: 0,
  uid: 0,
  gid: 0,
  size: 0,
  offset: 0,
  target: "",
};
const x = (name: string, value = "v") => ({ name, value: enc.encode(value) });

/** `bytes` with `change` applied and the checksum made right again. */
function patched(bytes: Uint8Array, change: (b: Uint8Array, dv: DataView) => void): Uint8Array {
  const out = bytes.slice();
  change(out, new DataView(out.buffer));
  out.set(blake3(out.subarray(0, out.length - 32)), out.length - 32);
  return out;
}

/** Where `needle` (ASCII) starts in `b`. */
function find(b: Uint8Array, needle: string): number {
  const n = enc.encode(needle);
  for (let i = 0; i + n.length <= b.length; i++) {
    if (n.every((c, k) => b[i + k] === c)) return i;
  }
  throw new Error(`${needle} not found`);
}

Deno.test("decodeFileTable refuses hostile version 3 records, each with one line naming the entry", () => {
  const withX = encodeFileTable([{ ...BASE, xattrs: [x("user.a"), x("user.b")] }]);
  const dev = encodeFileTable([{ ...BASE, path: "d", type: "chardev", major: 1, minor: 3 }]);
  const fifo = encodeFileTable([{ ...BASE, path: "p", type: "fifo" }]);
  // The good ones decode.
  assertEquals(decodeFileTable(withX, 0)[0].xattrs?.map((a) => a.name), ["user.a", "user.b"]);
  assertEquals(decodeFileTable(dev, 0)[0], {
    ...BASE,
    path: "d",
    type: "chardev",
    major: 1,
    minor: 3,
  });
  const at = 16; // the first record
  const xAt = find(withX, "user.a") - 5; // the first xattr's length fields
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty name", patched(withX, (b) => b[xAt] = 0), /f: xattr 0 has an empty name/],
    [
      "value over 64 KiB",
      patched(withX, (_, dv) => dv.setUint32(xAt + 1, 65537, true)),
      /f: xattr 0 value longer than 64 KiB/,
    ],
    [
      "value past the end",
      patched(withX, (_, dv) => dv.setUint32(xAt + 1, 60000, true)),
      /f: xattr 0 is truncated/,
    ],
    [
      "duplicate names",
      patched(withX, (b) => b[find(b, "user.b") + 5] = 0x61),
      /f: xattr "user\.a" appears twice/,
    ],
    [
      "unsorted names",
      patched(withX, (b) => b[find(b, "user.b") + 5] = 0x30),
      /f: xattrs are not sorted by name/,
    ],
    [
      "NUL in a name",
      patched(withX, (b) => b[find(b, "user.b") + 5] = 0),
      /f: xattr 1 name holds a NUL/,
    ],
    [
      "more xattrs than bytes",
      patched(withX, (_, dv) => dv.setUint16(at + 42, 3, true)),
      /f: xattr 2 is truncated/,
    ],
    [
      "fewer xattrs than bytes",
      patched(withX, (_, dv) => dv.setUint16(at + 42, 1, true)),
      /trailing bytes after the entries/,
    ],
    [
      "a device number on a regular file",
      patched(withX, (b) => b[at + 1] = 1),
      /f: a device number on a file/,
    ],
    [
      "a device number on a FIFO",
      patched(fifo, (b) => b[at + 1] = 1),
      /p: a device number on a fifo/,
    ],
    [
      "a device without its number",
      patched(dev, (b) => b[at + 1] = 0),
      /d: a device without a device number/,
    ],
    ["unknown flags", patched(dev, (b) => b[at + 1] = 3), /d: unknown flags/],
    [
      "a truncated device number",
      (() => {
        const cut = new Uint8Array(dev.length - 4); // the minor's 4 bytes gone
        cut.set(dev.subarray(0, dev.length - 36));
        cut.set(blake3(cut.subarray(0, cut.length - 32)), cut.length - 32);
        return cut;
      })(),
      /d: device number is truncated/,
    ],
    [
      "content on a device",
      patched(dev, (_, dv) => dv.setUint32(at + 16, 1, true)),
      /d: only files have content/,
    ],
    [
      "a device in a version 2 table",
      patched(dev, (_, dv) => dv.setUint16(4, 2, true)),
      /entry 0 has an unknown type/,
    ],
  ];
  for (const [what, bytes, re] of cases) {
    const e = assertThrows(() => decodeFileTable(bytes, 8), HexzError, re, what);
    assert(!(e as Error).message.includes("\n"), what);
  }
  // A hard link with xattrs of its own.
  const linked = encodeFileTable([
    { ...BASE, xattrs: [x("user.a")] },
    { ...BASE, path: "g", hardLinkTo: "f" },
  ]);
  const linkAt = find(linked, "gf") - 48;
  // The link is the last record: an xattr appended to it, and counted.
  const own = new Uint8Array([
    ...linked.subarray(0, linked.length - 32),
    6,
    1,
    0,
    0,
    0,
    ...enc.encode("user.av"),
    ...new Uint8Array(32),
  ]);
  new DataView(own.buffer).setUint16(linkAt + 42, 1, true);
  own.set(blake3(own.subarray(0, own.length - 32)), own.length - 32);
  assertThrows(
    () => decodeFileTable(own, 0),
    HexzError,
    /g: a hard link has attributes of its own/,
  );
  // The decoded link shares its file's xattrs.
  assertEquals(decodeFileTable(linked, 0)[1].xattrs?.[0].name, "user.a");
  // The encoder refuses what Linux would, naming the entry.
  for (
    const [what, xs, re] of [
      [
        "a long name",
        [x(`user.${"n".repeat(251)}`)],
        /f: xattr "user\.n+" needs a name of 1 to 255/,
      ],
      [
        "a big value",
        [x("user.v", "v".repeat(65537))],
        /f: xattr "user\.v" needs a value of at most 64 KiB/,
      ],
      ["twice", [x("user.a"), x("user.a")], /f: xattr "user\.a" needs a name given once/],
    ] as const
  ) {
    assertThrows(() => encodeFileTable([{ ...BASE, xattrs: [...xs] }]), HexzError, re, what);
  }
});

Deno.test("an archive with a hostile version 3 table is refused by extract and ls-like readers in one line", async () => {
  const [dirPath, done] = await tempDir();
  const dir = { path: dirPath };
  try {
    const good = encodeFileTable([{ ...BASE, path: "d", type: "chardev", major: 1, minor: 3 }]);
    const bad = patched(good, (b) => b[16 + 1] = 0);
    Deno.writeFileSync(`${dir.path}/disk`, new Uint8Array(0));
    await pack({ disk: `${dir.path}/disk`, output: `${dir.path}/bad.hxz`, fileTable: () => bad });
    for (
      const args of [
        ["extract", `${dir.path}/bad.hxz`, `${dir.path}/out`],
        ["cat", `${dir.path}/bad.hxz`, "--file", "d"],
      ]
    ) {
      const r = await hexz(args, { perms: ALL });
      assertEquals(r.code, 1, args[0]);
      assertEquals(
        r.err,
        `hexz: ${dir.path}/bad.hxz: file table: d: a device without a device number\n`,
        args[0],
      );
    }
    assert(!(await Deno.lstat(`${dir.path}/out`).catch(() => null)));
  } finally {
    await done();
  }
});

Deno.test("decodeFileTable: any bytes of a version 3 table decode or fail as one HexzError line, never otherwise", async () => {
  const vector = await Deno.readFile(new URL("./vectors/filetable-v3.bin", import.meta.url));
  let seed = 0x9e3779b9;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  let refused = 0;
  for (let i = 0; i < 5000; i++) {
    // A few bytes changed, with a checksum made right: the fields are what is tested.
    const b = patched(vector, (bytes) => {
      for (let k = 1 + rand(3); k > 0; k--) bytes[16 + rand(bytes.length - 48)] = rand(256);
    });
    try {
      for (const e of decodeFileTable(b, 1024)) {
        for (const x of e.xattrs ?? []) assert(x.name.length > 0 && x.value.length <= 65536);
      }
    } catch (e) {
      assert(e instanceof HexzError, `not a HexzError: ${e}`);
      assert(!e.message.includes("\n"), e.message);
      refused++;
    }
  }
  assert(refused > 2500, `only ${refused} of 5000 changed tables refused`);
});
