import { Buffer } from "node:buffer";
import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { check, type EncryptOptions, HexzError, inspect, memorySource, open } from "../mod.ts";
import type { PackOptions } from "../core/pack/pack.ts";
import { build } from "../core/pack/build.ts";
import { extractTree, fileTable } from "../core/read/files.ts";
import { deriveArchiveKeys } from "../core/crypto/keys.ts";
import { blake3 } from "../core/hash/blake3.ts";
import { HEADER_CHECKSUM_OFFSET } from "../core/format/constants.ts";
import { assertBytesEqual, packBytes, readAll } from "./_archive.ts";
import { hexz } from "./_cli.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
/** Cheap Argon2id parameters: the tests exercise the format, not the KDF's cost. */
const FAST: EncryptOptions = {
  password: "correct horse",
  kdf: { name: "argon2id", memoryKiB: 256, iterations: 1, parallelism: 1 },
};

/** Compressible text that cannot appear in an archive by accident. */
function secretText(n: number): Uint8Array {
  const line = "HEXZ-TOP-SECRET-PLAINTEXT-MARKER line ";
  let s = "";
  for (let i = 0; s.length < n; i++) s += `${line}${i}\n`;
  return new TextEncoder().encode(s.slice(0, n));
}

/** A disk with random data, zero runs, repeated blocks and text. */
function sampleDisk(): Uint8Array {
  const d = new Uint8Array(6 * MiB);
  d.set(pseudoRandom(2 * MiB, 7), 0);
  d.set(pseudoRandom(512 * KiB, 7), 3 * MiB); // repeats the first 512 KiB
  d.set(secretText(1 * MiB), 4 * MiB);
  return d;
}

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(hay.buffer, hay.byteOffset, hay.length).indexOf(Buffer.from(needle)) >= 0;
}

async function pack(dir: string, disk: Uint8Array, opts: Partial<PackOptions>) {
  return await packBytes(dir, disk, opts);
}

for (const compression of ["lz4", "zstd"] as const) {
  for (const cdc of [false, true]) {
    Deno.test(`encrypt: ${compression} ${cdc ? "cdc" : "fixed"} round-trips with the password`, async () => {
      const [dir, done] = await tempDir();
      try {
        const disk = sampleDisk();
        const memory = pseudoRandom(300 * KiB, 9);
        const out = `${dir}/e.hxz`;
        await Deno.writeFile(`${dir}/disk`, disk);
        await Deno.writeFile(`${dir}/mem`, memory);
        const { pack } = await import("../mod.ts");
        await pack({
          output: out,
          disk: `${dir}/disk`,
          memory: `${dir}/mem`,
          compression,
          cdc,
          workers: cdc ? 2 : 1,
          metadata: { note: "kept secret" },
          encrypt: FAST,
        });
        const a = await open(out, { password: FAST.password });
        try {
          assertBytesEqual(await readAll(a, "disk"), disk, "disk");
          assertBytesEqual(await readAll(a, "memory"), memory, "memory");
          assertEquals(await a.metadata(), { note: "kept secret" });
          assertBytesEqual(
            await a.read("disk", 4 * MiB + 100, 5000),
            disk.subarray(4 * MiB + 100, 4 * MiB + 5100),
          );
          const r = await check(a);
          assertEquals(r.bytes, disk.length + memory.length);
          const rep = inspect(a);
          assert(rep.features.includes("encrypted"));
          assertEquals(rep.encryption?.unlocked, true);
          assert(
            rep.streams[0].zeroBlocks > 0 && rep.streams[0].dedupBlocks > 0,
            "zero and dedup blocks",
          );
        } finally {
          a.close();
        }
      } finally {
        await done();
      }
    });
  }
}

Deno.test("encrypt: a wrong password is refused before anything but the header is read", async () => {
  const [dir, done] = await tempDir();
  try {
    const path = await pack(dir, sampleDisk(), { encrypt: FAST });
    const bytes = await Deno.readFile(path);
    const reads: [number, number][] = [];
    const inner = memorySource(bytes, "rec.hxz");
    const recording = {
      ...inner,
      read: (o: number, n: number) => (reads.push([o, n]), inner.read(o, n)),
    };
    const e = await assertRejects(
      () => open(recording, { password: "wrong" }),
      HexzError,
      /wrong password/,
    );
    assertEquals((e as HexzError).code, "password");
    assert(
      reads.every(([o, n]) => o + n <= 4096),
      `read beyond the header: ${JSON.stringify(reads)}`,
    );
    // The right password opens it.
    (await open(path, { password: FAST.password })).close();
  } finally {
    await done();
  }
});

Deno.test("encrypt: without the password the header is readable, the data is not", async () => {
  const [dir, done] = await tempDir();
  try {
    const disk = sampleDisk();
    const path = await pack(dir, disk, { encrypt: FAST, metadata: { x: 1 } });
    const a = await open(path);
    try {
      const r = inspect(a);
      assertEquals(r.streams[0].logicalSize, disk.length);
      assert(r.features.includes("encrypted"));
      assertEquals(r.encryption?.unlocked, false);
      assertEquals(r.encryption?.kdf?.name, "argon2id");
      assertEquals(r.encryption?.nonces, "synthetic");
      for (
        const f of [
          () => a.read("disk", 0, 16),
          () => a.metadata(),
          () => a.page(0),
          () => check(a),
        ]
      ) {
        const e = await assertRejects(
          f,
          HexzError,
          /archive is encrypted: give the password \(OpenOptions.password or key\)/,
        );
        assertEquals((e as HexzError).code, "password");
      }
    } finally {
      a.close();
    }
  } finally {
    await done();
  }
});

Deno.test("encrypt: no plaintext, file name or plain block hash appears in the archive", async () => {
  const [dir, done] = await tempDir();
  try {
    const text = secretText(256 * KiB);
    const marker = new TextEncoder().encode("HEXZ-TOP-SECRET-PLAINTEXT-MARKER");
    const firstBlockHash = blake3(text.subarray(0, 64 * KiB));
    const src = `${dir}/tree`;
    await Deno.mkdir(`${src}/HEXZ-SECRET-DIRECTORY-NAME`, { recursive: true });
    await Deno.writeFile(`${src}/HEXZ-SECRET-DIRECTORY-NAME/notes.txt`, text);
    const name = new TextEncoder().encode("HEXZ-SECRET-DIRECTORY-NAME");
    for (const compression of ["none", "lz4", "zstd"] as const) {
      const plain = await pack(dir, text, { compression });
      const sealed = await pack(dir, text, { compression, encrypt: FAST });
      const plainBytes = await Deno.readFile(plain);
      const sealedBytes = await Deno.readFile(sealed);
      // The control shows the search would find them (zstd entropy-codes its literals).
      assert(contains(plainBytes, firstBlockHash), "control: hash");
      assert(compression === "zstd" || contains(plainBytes, marker), "control: text");
      assert(!contains(sealedBytes, marker), `${compression}: plaintext in the encrypted archive`);
      assert(
        !contains(sealedBytes, firstBlockHash),
        `${compression}: a plain block hash is stored`,
      );
      await build({
        source: src,
        output: `${dir}/t-${compression}.hxz`,
        compression,
        encrypt: FAST,
      });
      const tree = await Deno.readFile(`${dir}/t-${compression}.hxz`);
      assert(
        !contains(tree, name) && !contains(tree, marker),
        `${compression}: file table or file in clear`,
      );
    }
    // The tree comes back with the password.
    const a = await open(`${dir}/t-zstd.hxz`, { password: FAST.password });
    try {
      assertEquals((await fileTable(a))?.map((e) => e.path), [
        "HEXZ-SECRET-DIRECTORY-NAME",
        "HEXZ-SECRET-DIRECTORY-NAME/notes.txt",
      ]);
      await extractTree(a, `${dir}/restored`);
      assertBytesEqual(
        await Deno.readFile(`${dir}/restored/HEXZ-SECRET-DIRECTORY-NAME/notes.txt`),
        text,
      );
    } finally {
      a.close();
    }
  } finally {
    await done();
  }
});

Deno.test("encrypt: a thin archive on an encrypted parent keeps dedup and needs the same password", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const v1 = pseudoRandom(8 * MiB, 21);
    const v2 = v1.slice();
    v2.set(pseudoRandom(256 * KiB, 22), 3 * MiB);
    const p1 = await pack(dir, v1, { compression: "zstd", cdc: true, encrypt: FAST });
    const base = keep(await open(p1, { password: FAST.password }));
    let p2: string, p3: string;
    try {
      // Inherited: no `encrypt` given, and still encrypted in the parent's chain.
      p2 = await pack(dir, v2, { base, basePath: p1 });
      p3 = await pack(dir, v2, {
        base,
        basePath: p1,
        encrypt: { password: FAST.password, randomNonce: true },
      });
      await assertRejects(
        () => pack(dir, v2, { base, basePath: p1, encrypt: { password: "other" } }),
        HexzError,
        /wrong password/,
      );
    } finally {
      base.close();
    }
    const full = (await Deno.stat(p1)).size;
    for (const p of [p2, p3]) {
      const size = (await Deno.stat(p)).size;
      assert(size < full / 8, `child ${size} bytes vs full ${full}`);
      const a = await open(p, { password: FAST.password });
      try {
        assert(a.header.encryption && a.header.parent, "encrypted and thin");
        assert(inspect(a).streams[0].parentBlocks > 0, "blocks found in the parent");
        assertBytesEqual(await readAll(a, "disk"), v2, "child");
        await check(a);
      } finally {
        a.close();
      }
      await assertRejects(() => open(p, { password: "other" }), HexzError, /wrong password/);
    }
    // An unencrypted base cannot carry an encrypted child.
    const plainBase = await open(await pack(dir, v1, { cdc: true }));
    try {
      await assertRejects(
        () => pack(dir, v2, { base: plainBase, encrypt: FAST }),
        HexzError,
        /not encrypted/,
      );
    } finally {
      plainBase.close();
    }
  } finally {
    await done();
  }
});

Deno.test("encrypt: equal blocks are stored once", async () => {
  const [dir, done] = await tempDir();
  try {
    const block = pseudoRandom(64 * KiB, 5);
    const disk = new Uint8Array(10 * 64 * KiB);
    for (let i = 0; i < 8; i++) disk.set(block, i * 64 * KiB);
    disk.set(pseudoRandom(128 * KiB, 6), 8 * 64 * KiB);
    for (const randomNonce of [false, true]) {
      const path = await pack(dir, disk, {
        compression: "none",
        encrypt: { ...FAST, randomNonce },
      });
      const a = await open(path, { password: FAST.password });
      try {
        const s = inspect(a).streams[0];
        assertEquals([s.blocks, s.dedupBlocks, s.dataBlocks], [10, 7, 3]);
        assertEquals(s.storedBytes, 3 * (64 * KiB + 28));
        assertBytesEqual(await readAll(a, "disk"), disk);
      } finally {
        a.close();
      }
    }
  } finally {
    await done();
  }
});

Deno.test("encrypt: synthetic nonces repeat only with the bytes; random nonces never", async () => {
  const chain = {
    kdf: FAST.kdf as never,
    salt: new Uint8Array(32).fill(1),
    key: new Uint8Array(32).fill(2),
  };
  const salt = new Uint8Array(32).fill(3);
  const a = pseudoRandom(1000, 1);
  const b = a.slice();
  b[999] ^= 1;
  const join = (p: Uint8Array[]) => Buffer.concat(p).toString("hex");
  const siv = await deriveArchiveKeys(chain, salt, "synthetic");
  assertEquals(join(await siv.sealBlock(a)), join(await siv.sealBlock(a)));
  const [na] = await siv.sealBlock(a);
  const [nb] = await siv.sealBlock(b);
  assert(join([na]) !== join([nb]), "different bytes, different nonces");
  const rnd = await deriveArchiveKeys(chain, salt, "random");
  assert(join(await rnd.sealBlock(a)) !== join(await rnd.sealBlock(a)), "random nonces differ");
  assertBytesEqual(await rnd.openBlock(Buffer.concat(await rnd.sealBlock(a)), "x"), a);
});

Deno.test("encrypt: random-nonce archives round-trip and say so", async () => {
  const [dir, done] = await tempDir();
  try {
    const disk = sampleDisk();
    const path = await pack(dir, disk, {
      compression: "zstd",
      encrypt: { ...FAST, randomNonce: true },
    });
    const a = await open(path, { password: FAST.password });
    try {
      assertEquals(inspect(a).encryption?.nonces, "random");
      assertBytesEqual(await readAll(a, "disk"), disk);
      await check(a);
    } finally {
      a.close();
    }
  } finally {
    await done();
  }
});

Deno.test("encrypt: PBKDF2 archives round-trip", async () => {
  const [dir, done] = await tempDir();
  try {
    const disk = sampleDisk();
    const kdf = { name: "pbkdf2" as const, memoryKiB: 0, iterations: 1000, parallelism: 0 };
    const path = await pack(dir, disk, { encrypt: { password: "pw", kdf } });
    const a = await open(path, { password: "pw" });
    try {
      assertEquals(inspect(a).encryption?.kdf, { name: "pbkdf2", iterations: 1000 });
      assertBytesEqual(await readAll(a, "disk"), disk);
    } finally {
      a.close();
    }
    await assertRejects(() => open(path, { password: "pW" }), HexzError, /wrong password/);
  } finally {
    await done();
  }
});

Deno.test("encrypt: inspect shows only the parameters the archive's KDF has", async () => {
  const [dir, done] = await tempDir();
  try {
    const disk = pseudoRandom(64 * KiB, 12);
    const pbkdf2 = { name: "pbkdf2" as const, memoryKiB: 0, iterations: 1000, parallelism: 0 };
    const p = await pack(dir, disk, { encrypt: { password: "pw", kdf: pbkdf2 } });
    let r = await hexz(["inspect", p, "--json"]);
    assertEquals(r.code, 0, r.err);
    const e = JSON.parse(r.out).encryption;
    assertEquals(e.kdf, { name: "pbkdf2", iterations: 1000 });
    assertEquals(e.kdfDescription, "pbkdf2-sha256 (1000 iterations)");
    r = await hexz(["inspect", p]);
    assertMatch(r.out, /^encryption: .*, key from pbkdf2-sha256 \(1000 iterations\), /m);
    assert(!/KiB,|lane/.test(r.out.split("\n").find((l) => l.startsWith("encryption"))!));
    // Argon2id has all three.
    const a = await pack(dir, disk, { encrypt: FAST });
    r = await hexz(["inspect", a, "--json"]);
    assertEquals(JSON.parse(r.out).encryption.kdf, {
      name: "argon2id",
      memoryKiB: 256,
      iterations: 1,
      parallelism: 1,
    });
    r = await hexz(["inspect", a]);
    assertMatch(r.out, /key from argon2id \(256 KiB, 1 pass, 1 lane\)/);
  } finally {
    await done();
  }
});

Deno.test("encrypt: changed header, page or block bytes are detected with the password", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const disk = sampleDisk();
    const path = await pack(dir, disk, { encrypt: FAST });
    const good = await Deno.readFile(path);
    const variant = async (edit: (b: Uint8Array) => void) => {
      const b = good.slice();
      edit(b);
      return await open(memorySource(b, "t.hxz"), { password: FAST.password });
    };
    const rehash = (b: Uint8Array) =>
      b.set(blake3(b.subarray(0, HEADER_CHECKSUM_OFFSET)), HEADER_CHECKSUM_OFFSET);
    // A flipped header byte: the checksum catches it.
    await assertRejects(() => variant((b) => b[41] ^= 1), HexzError, /header checksum mismatch/);
    // Flipped and re-checksummed (what an attacker would do): the header MAC catches it.
    for (const at of [41, 60, 1056, 1300]) {
      await assertRejects(
        () =>
          variant((b) => {
            b[at] ^= 1;
            rehash(b);
          }),
        HexzError,
        /header authentication failed/,
      );
    }
    // Without the password the same header still opens (nothing to check it with).
    const tampered = good.slice();
    tampered[41] ^= 1;
    rehash(tampered);
    (await open(memorySource(tampered, "t.hxz"))).close();
    // A changed page or block ciphertext.
    const a = keep(await open(path, { password: FAST.password }));
    const pageAt = a.pages[0].offset + 100;
    const blockAt = (await a.block("disk", 0)).entry.location + 40;
    a.close();
    const page = await variant((b) => b[pageAt] ^= 1);
    await assertRejects(() => page.read("disk", 0, 1), HexzError, /checksum mismatch|differs/);
    page.close();
    const block = await variant((b) => b[blockAt] ^= 1);
    await assertRejects(() => block.read("disk", 0, 1), HexzError, /authentication failed/);
    block.close();
  } finally {
    await done();
  }
});

Deno.test("encrypt: parallel (workers) and serial packs both decrypt to the input", async () => {
  const [dir, done] = await tempDir();
  try {
    const disk = new Uint8Array(24 * MiB);
    disk.set(pseudoRandom(12 * MiB, 31));
    disk.set(secretText(6 * MiB), 14 * MiB);
    const sizes: number[] = [];
    for (const workers of [1, 2]) {
      const path = await pack(dir, disk, { compression: "lz4", workers, encrypt: FAST });
      sizes.push((await Deno.stat(path)).size);
      const a = await open(path, { password: FAST.password });
      try {
        assertBytesEqual(await readAll(a, "disk"), disk, `workers ${workers}`);
      } finally {
        a.close();
      }
    }
    assertEquals(sizes[0], sizes[1]);
  } finally {
    await done();
  }
});

Deno.test("encrypt: the CLI takes the password from HEXZ_PASSWORD and --password-file", async () => {
  const [dir, done] = await tempDir();
  try {
    const disk = sampleDisk();
    await Deno.writeFile(`${dir}/d.img`, disk);
    await Deno.writeTextFile(`${dir}/pw`, "from a file\n");
    const env = (pw: string | null) =>
      pw === null ? Deno.env.delete("HEXZ_PASSWORD") : Deno.env.set("HEXZ_PASSWORD", pw);
    try {
      env("from the env");
      let r = await hexz(["pack", `${dir}/e.hxz`, "--disk", `${dir}/d.img`, "--encrypt", "-q"]);
      assertEquals(r.code, 0, r.err);
      r = await hexz(["cat", `${dir}/e.hxz`, "--offset", "4M", "--length", "64K"]);
      assertEquals(r.code, 0, r.err);
      assertBytesEqual(r.stdout, disk.subarray(4 * MiB, 4 * MiB + 64 * KiB));
      env("wrong");
      r = await hexz(["check", `${dir}/e.hxz`]);
      assertEquals(r.code, 1);
      assertMatch(r.err, /wrong password/);
      env(null);
      r = await hexz(["cat", `${dir}/e.hxz`, "--length", "1"]);
      assertEquals(r.code, 1);
      assertMatch(r.err, /archive is encrypted: give the password/);
      r = await hexz(["inspect", `${dir}/e.hxz`]);
      assertEquals(r.code, 0, r.err);
      assertMatch(r.out, /encryption: AES-256-GCM.*argon2id \(64 MiB, 3 passes, 1 lane\)/);
      assertMatch(r.out, /password: not given/);
      assertMatch(r.out, /size: 6 MiB/);
      r = await hexz([
        "pack",
        `${dir}/p.hxz`,
        "--disk",
        `${dir}/d.img`,
        "--encrypt",
        "--kdf",
        "pbkdf2",
        "--password-file",
        `${dir}/pw`,
        "-q",
      ]);
      assertEquals(r.code, 0, r.err);
      r = await hexz(["check", `${dir}/p.hxz`, "--password-file", `${dir}/pw`, "-q"]);
      assertEquals(r.code, 0, r.err);
      r = await hexz([
        "extract",
        `${dir}/p.hxz`,
        `${dir}/out.img`,
        "--password-file",
        `${dir}/pw`,
        "-q",
      ]);
      assertEquals(r.code, 0, r.err);
      assertBytesEqual(await Deno.readFile(`${dir}/out.img`), disk);
      r = await hexz(["inspect", `${dir}/p.hxz`, "--json", "--password-file", `${dir}/pw`]);
      assertEquals(JSON.parse(r.out).encryption.unlocked, true);
      assertEquals(JSON.parse(r.out).encryption.kdf.name, "pbkdf2");
      // No password anywhere and no terminal: a usage error, nothing written.
      r = await hexz(["pack", `${dir}/n.hxz`, "--disk", `${dir}/d.img`, "--encrypt"]);
      assertEquals(r.code, 2);
      assertMatch(r.err, /--encrypt needs a password/);
      r = await hexz(["pack", `${dir}/n.hxz`, "--disk", `${dir}/d.img`, "--kdf", "pbkdf2"]);
      assertEquals(r.code, 2);
    } finally {
      env(null);
    }
  } finally {
    await done();
  }
});

/** Runs the CLI on a pseudo-terminal (util-linux `script`), answering each prompt as it appears. */
async function onTerminal(args: string[], answers: [RegExp, string][]) {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const quoted = [Deno.execPath(), "run", "-q", "-A", cli, ...args].map((a) => `'${a}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", quoted, "/dev/null"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  let seen = "";
  const reader = child.stdout.getReader();
  const timer = setTimeout(() => child.kill(), 20_000);
  try {
    for (const [prompt, answer] of answers) {
      while (!prompt.test(seen)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`no prompt ${prompt}; output: ${seen}`);
        seen += new TextDecoder().decode(value);
      }
      seen = seen.replace(prompt, "<prompted>");
      await writer.write(new TextEncoder().encode(answer + "\r"));
    }
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    await writer.close().catch(() => {});
    const status = await child.status;
    await child.stderr.cancel();
    return { code: status.code, out: seen };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test(needs(["script"], {
  name: "encrypt: the CLI asks for the password on a terminal without echoing it",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      const disk = pseudoRandom(200 * KiB, 3);
      await Deno.writeFile(`${dir}/d.img`, disk);
      const pw = "tty-secret-Ünïcode";
      let r = await onTerminal(
        ["pack", `${dir}/e.hxz`, "--disk", `${dir}/d.img`, "--encrypt", "--kdf", "pbkdf2", "-q"],
        [[/new password: /, pw], [/repeat password: /, pw]],
      );
      assertEquals(r.code, 0, r.out);
      assert(!r.out.includes(pw), `the password was echoed: ${r.out}`);
      const a = await open(`${dir}/e.hxz`, { password: pw });
      try {
        assertBytesEqual(await readAll(a, "disk"), disk);
      } finally {
        a.close();
      }
      r = await onTerminal(["check", `${dir}/e.hxz`], [[/password for .*: /, pw]]);
      assertEquals(r.code, 0, r.out);
      assertMatch(r.out, /ok \(4 blocks/);
      r = await onTerminal(
        ["pack", `${dir}/f.hxz`, "--disk", `${dir}/d.img`, "--encrypt"],
        [[/new password: /, "one"], [/repeat password: /, "two"]],
      );
      assertEquals(r.code, 2);
      assertMatch(r.out, /passwords do not match/);
    } finally {
      await done();
    }
  },
}));

Deno.test("encrypt: random byte flips are all detected, as HexzErrors, never a crash", async () => {
  const [dir, done] = await tempDir();
  try {
    const disk = sampleDisk().subarray(0, 2 * MiB);
    const path = await pack(dir, disk, { encrypt: FAST, metadata: { m: 1 } });
    const good = await Deno.readFile(path);
    let x = 12345;
    for (let i = 0; i < 40; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      const b = good.slice();
      const at = 4096 + (x % (b.length - 4096));
      b[at] ^= 1 << (i % 8);
      // Every byte after the header is covered by the hash chain (or a GCM tag), so the open
      // or the full check must refuse each flip.
      let caught: unknown = null;
      try {
        const a = await open(memorySource(b, "f.hxz"), { password: FAST.password });
        try {
          await check(a);
        } finally {
          a.close();
        }
      } catch (e) {
        caught = e;
      }
      assert(caught instanceof HexzError, `flip at ${at}: ${caught ?? "not detected"}`);
    }
  } finally {
    await done();
  }
});

Deno.test(needs(["script"], {
  name: "encrypt: verify asks for the password on a terminal for a full check",
  fn: async () => {
    const [dir, done] = await tempDir();
    try {
      const p = await packBytes(dir, pseudoRandom(100 * KiB, 4), {
        encrypt: { password: "tty-verify", kdf: "pbkdf2" },
      });
      let r0 = await hexz(["keygen", "--output-dir", dir, "--name", "k"]);
      assertEquals(r0.code, 0, r0.err);
      r0 = await hexz(["sign", `${dir}/k.key`, p]);
      assertEquals(r0.code, 0, r0.err);
      const r = await onTerminal(["verify", `${dir}/k.pub`, p], [[
        /password for .*: /,
        "tty-verify",
      ]]);
      assertEquals(r.code, 0, r.out);
      assertMatch(r.out, /good signature .* 2 blocks verified/);
      assert(!r.out.includes("tty-verify"), `the password was echoed: ${r.out}`);
    } finally {
      await done();
    }
  },
}));
