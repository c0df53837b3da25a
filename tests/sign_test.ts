import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { decodeHeader, encodeHeader } from "../core/format/header.ts";
import { HEADER_SIZE, KIND } from "../core/format/constants.ts";
import { blake3 } from "../core/hash/blake3.ts";
import { createZstdDictCodec } from "../core/codec/zstd_dict.ts";
import { TRAILER_SIZE } from "../core/sign/trailer.ts";
import { generateKeyPair, open, pack, signArchive, verifyArchive } from "../mod.ts";
import { packBytes } from "./_archive.ts";
import { hexz } from "./_cli.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";

const KiB = 1024;
const enc = new TextEncoder();

/** Disk data with every kind of block: random, text (compressible), zeros, a duplicate. */
function diskData(): Uint8Array {
  const d = new Uint8Array(4608 * KiB); // 4608 blocks of 1 KiB: two index pages
  d.set(pseudoRandom(1024 * KiB, 7), 0);
  const text = enc.encode("the quick brown fox jumps over the lazy dog; hexz signs archives\n");
  for (let o = 2048 * KiB; o < 4352 * KiB - text.length; o += text.length) d.set(text, o);
  d.set(d.subarray(0, 64 * KiB), 4416 * KiB); // duplicates of the first blocks
  return d;
}

/** An archive with a memory stream, metadata, a zstd dictionary and several index pages. */
async function richArchive(dir: string): Promise<string> {
  const dictBytes = enc.encode("the quick brown fox jumps over the lazy dog; ".repeat(40));
  return await packBytes(dir, diskData(), {
    compression: "zstd",
    blockSize: 1024,
    metadata: { source: "sign test" },
    dictionary: { bytes: dictBytes, codec: await createZstdDictCodec(dictBytes, 3) },
  }, pseudoRandom(200 * KiB, 9));
}

/** The message docs/SECURITY.md defines, built here from raw header bytes. */
function documentedMessage(file: Uint8Array): Uint8Array {
  const m = new Uint8Array(74);
  m.set(enc.encode("hexz signature v1\0"), 0);
  m.set(file.subarray(24, 40), 18); // UUID
  m.set(file.subarray(4064, 4096), 34); // root hash
  m.set(file.subarray(48, 56), 66); // archiveEnd, u64 LE
  return m;
}

function archiveEnd(file: Uint8Array): number {
  return Number(new DataView(file.buffer, file.byteOffset).getBigUint64(48, true));
}

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const p = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder();
  return { code: p.code, out: text.decode(p.stdout) + text.decode(p.stderr) };
}

async function keygen(dir: string, name: string): Promise<[string, string]> {
  const r = await hexz(["keygen", "--output-dir", dir, "--name", name]);
  assertEquals(r.code, 0, r.err);
  return [`${dir}/${name}.key`, `${dir}/${name}.pub`];
}

function flipped(bytes: Uint8Array, at: number): Uint8Array {
  const c = bytes.slice();
  c[at] ^= 0x20;
  return c;
}

Deno.test(needs(["openssl"], {
  name: "keygen, sign and verify round trip through the CLI; openssl reads both keys",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const [key, pub] = await keygen(dir, "rel");
      assertEquals((await Deno.stat(key)).mode! & 0o777, 0o600);
      assertEquals((await run("openssl", ["pkey", "-in", key, "-noout"])).code, 0);
      assertEquals((await run("openssl", ["pkey", "-pubin", "-in", pub, "-noout"])).code, 0);
      // The public key openssl derives from our private key is our public key.
      const derived = await run("openssl", ["pkey", "-in", key, "-pubout"]);
      assertEquals(derived.out, await Deno.readTextFile(pub));

      const again = await hexz(["keygen", "--output-dir", dir, "--name", "rel"]);
      assertEquals(again.code, 1);
      assertMatch(again.err, /already exists/);
      // Keys swapped: named by their files.
      const swapped = await hexz(["sign", pub, `${dir}/none.hxz`]);
      assertEquals([swapped.code, swapped.err], [
        2,
        `hexz: ${pub}: expected a PEM "PRIVATE KEY", found "PUBLIC KEY"\n`,
      ]);
      const swapped2 = await hexz(["verify", key, `${dir}/none.hxz`]);
      assertEquals([swapped2.code, swapped2.err], [
        2,
        `hexz: ${key}: expected a PEM "PUBLIC KEY", found "PRIVATE KEY"\n`,
      ]);
      // A directory that does not exist yet is created, private to its owner.
      const fresh = await hexz(["keygen", "--output-dir", `${dir}/new/keys`, "--name", "k"]);
      assertEquals(fresh.code, 0, fresh.err);
      assertEquals((await Deno.stat(`${dir}/new/keys`)).mode! & 0o777, 0o700);
      assertEquals((await Deno.stat(`${dir}/new/keys/k.key`)).mode! & 0o777, 0o600);
      const onFile = await hexz(["keygen", "--output-dir", key]);
      assertEquals([onFile.code, onFile.err], [2, `hexz: ${key}: not a directory\n`]);

      const archive = await packBytes(dir, pseudoRandom(300 * KiB, 3));
      const original = await Deno.readFile(archive);
      const unsigned = await hexz(["verify", pub, archive]);
      assertEquals(unsigned.code, 1);
      assertMatch(unsigned.err, /no signature/);

      const s = await hexz(["sign", key, archive]);
      assertEquals(s.code, 0, s.err);
      const signed = await Deno.readFile(archive);
      assertEquals(signed.length, original.length + TRAILER_SIZE);
      assertEquals(
        signed.subarray(0, original.length),
        original,
        "the archive proper is untouched",
      );

      const v = await hexz(["verify", pub, archive]);
      assertEquals(v.code, 0, v.err);
      assertMatch(v.out, /good signature/);
      assertEquals((await hexz(["verify", pub, archive, "--fast"])).code, 0);
      // Readers ignore the trailer.
      assertEquals((await hexz(["check", archive])).code, 0);

      const [, otherPub] = await keygen(dir, "other");
      const wrong = await hexz(["verify", otherPub, archive]);
      assertEquals(wrong.code, 1);
      assertMatch(wrong.err, /signed by another key/);
      assertEquals(wrong.err.trim().split("\n").length, 1, "one line");
      assertEquals(
        (await hexz(["verify", key, archive])).code,
        2,
        "a private key is no public key",
      );
    } finally {
      await done();
    }
  },
}));

Deno.test("signing again replaces that key's trailer; another key adds its own", async () => {
  const [dir, done] = await tempDir();
  try {
    const archive = await packBytes(dir, pseudoRandom(100 * KiB, 4));
    const original = await Deno.readFile(archive);
    const a = await generateKeyPair();
    const b = await generateKeyPair();
    assertEquals((await signArchive(archive, a.privatePem)).replaced, false);
    const r = await signArchive(archive, b.privatePem);
    assertEquals([r.replaced, r.signatures], [false, 2]);
    const again = await signArchive(archive, a.privatePem);
    assertEquals([again.replaced, again.signatures], [true, 2]);
    const file = await Deno.readFile(archive);
    assertEquals(file.length, original.length + 2 * TRAILER_SIZE);
    assertEquals(file.subarray(0, original.length), original);
    for (const k of [a, b]) {
      const rep = await verifyArchive(archive, k.publicPem);
      assert(rep.ok, rep.message);
      assertEquals(rep.signers.sort(), [a.keyId, b.keyId].sort());
    }
    const entries = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert(!entries.some((n) => n.includes(".tmp-")), `no temporary files left: ${entries}`);
  } finally {
    await done();
  }
});

Deno.test(needs(["openssl"], {
  name: "openssl verifies our signature over the documented message",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const [key, pub] = await keygen(dir, "k");
      const archive = await packBytes(dir, pseudoRandom(200 * KiB, 5), {}, pseudoRandom(5000, 6));
      assertEquals((await hexz(["sign", key, archive])).code, 0);
      const file = await Deno.readFile(archive);
      const t = file.subarray(archiveEnd(file));
      assertEquals(t.length, TRAILER_SIZE);
      assertEquals(new TextDecoder().decode(t.subarray(0, 4)), "HXSG");
      assertEquals(t.subarray(120), blake3(t.subarray(0, 120)), "trailer checksum");
      await Deno.writeFile(`${dir}/msg.bin`, documentedMessage(file));
      await Deno.writeFile(`${dir}/sig.bin`, t.subarray(24, 88));
      const args = (msg: string) => [
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        pub,
        "-rawin",
        "-in",
        msg,
        "-sigfile",
        `${dir}/sig.bin`,
      ];
      const ok = await run("openssl", args(`${dir}/msg.bin`));
      assertEquals(ok.code, 0, ok.out);
      assertMatch(ok.out, /Signature Verified Successfully/);
      // The trailer's key id and public key are the documented ones.
      const der =
        (await run("sh", ["-c", `openssl pkey -pubin -in ${pub} -outform DER | od -An -v -tx1`]))
          .out.replace(/\s+/g, "");
      const spki = Uint8Array.from(der.match(/../g)!, (h) => parseInt(h, 16));
      assertEquals(t.subarray(16, 24), blake3(spki).subarray(0, 8), "key id");
      assertEquals(t.subarray(88, 120), spki.subarray(12), "public key");
      // Any other message fails.
      await Deno.writeFile(`${dir}/bad.bin`, flipped(documentedMessage(file), 40));
      assert((await run("openssl", args(`${dir}/bad.bin`))).code !== 0);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["openssl"], {
  name: "a signature made by openssl, put into a trailer, verifies with ours",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const key = `${dir}/o.pem`;
      const pub = `${dir}/o.pub`;
      assertEquals(
        (await run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key])).code,
        0,
      );
      assertEquals((await run("openssl", ["pkey", "-in", key, "-pubout", "-out", pub])).code, 0);
      await run("openssl", [
        "pkey",
        "-pubin",
        "-in",
        pub,
        "-outform",
        "DER",
        "-out",
        `${dir}/o.der`,
      ]);
      const spki = await Deno.readFile(`${dir}/o.der`);
      assertEquals(spki.length, 44);

      const archive = await packBytes(dir, pseudoRandom(150 * KiB, 8));
      const file = await Deno.readFile(archive);
      await Deno.writeFile(`${dir}/msg.bin`, documentedMessage(file));
      const s = await run("openssl", [
        "pkeyutl",
        "-sign",
        "-inkey",
        key,
        "-rawin",
        "-in",
        `${dir}/msg.bin`,
        "-out",
        `${dir}/sig.bin`,
      ]);
      assertEquals(s.code, 0, s.out);
      const sig = await Deno.readFile(`${dir}/sig.bin`);
      assertEquals(sig.length, 64);
      // The trailer, built from docs/SECURITY.md alone.
      const t = new Uint8Array(TRAILER_SIZE);
      t.set(enc.encode("HXSG"), 0);
      t[4] = 1; // version
      t[8] = 1; // Ed25519
      t.set(blake3(spki).subarray(0, 8), 16);
      t.set(sig, 24);
      t.set(spki.subarray(12), 88);
      t.set(blake3(t.subarray(0, 120)), 120);
      const withTrailer = new Uint8Array(file.length + TRAILER_SIZE);
      withTrailer.set(file);
      withTrailer.set(t, file.length);
      await Deno.writeFile(archive, withTrailer);
      const v = await hexz(["verify", pub, archive]);
      assertEquals(v.code, 0, v.err);
      // And our signer takes openssl's key: it replaces the trailer with an equal one
      // (Ed25519 is deterministic).
      assertEquals((await hexz(["sign", key, archive])).code, 0);
      assertEquals(await Deno.readFile(archive), withTrailer);
    } finally {
      await done();
    }
  },
}));

Deno.test("flipping one byte in any region of a signed archive makes verify fail", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const [key, pub] = await keygen(dir, "k");
    const path = await richArchive(dir);
    assertEquals((await hexz(["sign", key, path])).code, 0);
    assertEquals((await hexz(["verify", pub, path])).code, 0);
    const bytes = await Deno.readFile(path);

    const a = keep(await open(path));
    const h = a.header;
    assert(h.dictionary.length > 0 && h.metadata.length > 0, "has a dictionary and metadata");
    assert(a.pages.length >= 3, `${a.pages.length} pages`);
    // A compressed data block of page 1 (disk), and a memory block.
    let disk = null;
    for await (const b of a.blocks("disk")) {
      if (b.entry.kind === KIND.data && b.index > 4096 && b.entry.codec === 3) {
        disk = b;
        break;
      }
    }
    const mem = await a.block("memory", 3);
    a.close();
    assert(disk && mem.entry.kind === KIND.data, "found data blocks");
    const page1 = a.pages.findIndex((p) => p.stream === 0 && p.firstBlock > 0);
    const diskRead = ["cat", "--offset", `${disk.offset}`, "--length", "1"];
    const end = h.archiveEnd;

    const regions: [string, number, string[] | null][] = [
      ["header", 1300, diskRead], // in the message field
      ["disk block payload", disk.entry.location + 5, diskRead],
      ["memory block payload", mem.entry.location + 5, [
        "cat",
        "--memory",
        "--offset",
        `${mem.offset}`,
        "--length",
        "1",
      ]],
      ["index page", a.pages[page1].offset + 40, diskRead],
      ["master index", h.master.offset + 20, diskRead],
      ["metadata", h.metadata.offset + 1, ["check"]],
      ["dictionary", h.dictionary.offset + 10, diskRead],
      ["trailer magic", end, null],
      ["trailer key id", end + 17, null],
      ["trailer signature", end + 30, null],
      ["trailer public key", end + 100, null],
      ["trailer checksum", end + 140, null],
    ];
    for (const [what, at, read] of regions) {
      const p = `${dir}/bad.hxz`;
      await Deno.writeFile(p, flipped(bytes, at));
      const v = await hexz(["verify", pub, p]);
      assertEquals(v.code, 1, `${what}: verify must fail`);
      assertEquals(v.err.trim().split("\n").length, 1, `${what}: one line`);
      assertMatch(
        v.err,
        at >= end ? /signature trailer damaged/ : /archive data corrupt/,
        `${what}: ${v.err}`,
      );
      if (read) {
        const r = await hexz([read[0], p, ...read.slice(1)]);
        assertEquals(r.code, 1, `${what}: ${read.join(" ")} must fail`);
        assert(!/internal error/.test(r.err), `${what}: ${r.err}`);
      } else {
        // A damaged trailer leaves the data readable: it is not part of the archive.
        assertEquals((await hexz(["check", p])).code, 0, what);
      }
    }
    // A header that is valid but different (re-checksummed) is not the signed one.
    const hh = decodeHeader(bytes.subarray(0, HEADER_SIZE), bytes.length);
    hh.message = "not what was signed";
    const forged = bytes.slice();
    forged.set(encodeHeader(hh), 0);
    await Deno.writeFile(`${dir}/forged.hxz`, forged);
    assertEquals((await hexz(["check", `${dir}/forged.hxz`])).code, 0);
    const v = await hexz(["verify", pub, `${dir}/forged.hxz`]);
    assertEquals(v.code, 1);
    assertMatch(v.err, /bad signature/);
  } finally {
    await done();
  }
});

Deno.test("verify names malformed trailer regions without reading past them", async () => {
  const [dir, done] = await tempDir();
  try {
    const k = await generateKeyPair();
    const path = await packBytes(dir, pseudoRandom(64 * KiB, 10));
    await signArchive(path, k.privatePem);
    const signed = await Deno.readFile(path);
    const cases: [string, Uint8Array, RegExp][] = [
      ["a torn append", signed.subarray(0, signed.length - 1), /not 0\.\.64 signature trailers/],
      ["garbage after", concat(signed, pseudoRandom(7, 1)), /not 0\.\.64/],
      ["too many", concat(signed, new Uint8Array(64 * TRAILER_SIZE)), /not 0\.\.64/],
      ["a zeroed trailer", concat(signed, new Uint8Array(TRAILER_SIZE)), /checksum mismatch/],
    ];
    for (const [what, bytes, re] of cases) {
      await Deno.writeFile(`${dir}/x.hxz`, bytes);
      const r = await verifyArchive(`${dir}/x.hxz`, k.publicPem);
      assertEquals(r.status, "bad-trailer", what);
      assertMatch(r.message, re, what);
    }
  } finally {
    await done();
  }
});

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

Deno.test("a thin archive's signature covers its parent's identity and blocks", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const [key, pub] = await keygen(dir, "k");
    const v1 = pseudoRandom(512 * KiB, 11);
    const v2 = v1.slice();
    v2.set(pseudoRandom(64 * KiB, 12), 128 * KiB);
    await Deno.writeFile(`${dir}/v1.img`, v1);
    await Deno.writeFile(`${dir}/v2.img`, v2);
    const parent = `${dir}/v1.hxz`;
    const child = `${dir}/v2.hxz`;
    await pack({ output: parent, disk: `${dir}/v1.img`, compression: "lz4" });
    const base = keep(await open(parent));
    await pack({ output: child, disk: `${dir}/v2.img`, base, basePath: parent });
    base.close();
    const parentBytes = await Deno.readFile(parent);
    assertEquals((await hexz(["sign", key, child])).code, 0);
    assertEquals((await hexz(["verify", pub, child])).code, 0);

    // Another archive with the same content in the parent's place is not the parent.
    await pack({ output: parent, disk: `${dir}/v1.img`, compression: "lz4", force: true });
    let v = await hexz(["verify", pub, child]);
    assertEquals(v.code, 1);
    assertMatch(
      v.err,
      /^hexz: .*v2\.hxz: .*v1\.hxz is not the parent .*: it was moved or replaced\n$/,
    );
    assert(!v.err.includes("corrupt"), v.err);
    assertEquals((await hexz(["verify", pub, child, "--fast"])).code, 0, "fast reads no parent");

    // A missing parent is said to be missing, not damaged data.
    await Deno.remove(parent);
    v = await hexz(["verify", pub, child]);
    assertEquals(v.code, 1);
    assertMatch(v.err, /^hexz: .*v2\.hxz: parent archive \S*v1\.hxz of \S*v2\.hxz not found/);
    assert(!v.err.includes("corrupt"), v.err);

    // A damaged block in the parent is found through the child.
    await Deno.writeFile(parent, parentBytes);
    const pa = keep(await open(parent));
    const b = await pa.block("disk", 0);
    pa.close();
    await Deno.writeFile(parent, flipped(parentBytes, b.entry.location + 3));
    v = await hexz(["verify", pub, child]);
    assertEquals(v.code, 1);
    assertMatch(v.err, /archive data corrupt: .*BLAKE3 mismatch/);
    await Deno.writeFile(parent, parentBytes);

    // Pointing the child at another parent (a re-checksummed header) breaks the signature.
    const childBytes = await Deno.readFile(child);
    const h = decodeHeader(childBytes.subarray(0, HEADER_SIZE), childBytes.length);
    h.parent!.rootHash = flipped(h.parent!.rootHash, 0);
    const forged = childBytes.slice();
    forged.set(encodeHeader(h), 0);
    await Deno.writeFile(child, forged);
    v = await hexz(["verify", pub, child, "--fast"]);
    assertEquals(v.code, 1);
    assertMatch(v.err, /bad signature/);
  } finally {
    await done();
  }
});

Deno.test("verify of a signed encrypted archive: --fast needs no password, a full check does", async () => {
  const [dir, done] = await tempDir();
  try {
    const [priv, pub] = await keygen(dir, "k");
    const p = await packBytes(dir, diskData(), {
      encrypt: { password: "pw-123", kdf: "pbkdf2" },
    });
    let r = await hexz(["sign", priv, p]);
    assertEquals(r.code, 0, r.err);
    r = await hexz(["verify", pub, p, "--fast"]);
    assertEquals(r.code, 0, r.err);
    await Deno.writeTextFile(`${dir}/pw`, "pw-123\n");
    r = await hexz(["verify", pub, p, "--password-file", `${dir}/pw`]);
    assertEquals(r.code, 0, r.err);
    assertMatch(r.out, /good signature .* blocks verified/);
    r = await hexz(["verify", pub, p]);
    assertEquals(r.code, 1);
    assertMatch(r.err, /password/);
    await Deno.writeTextFile(`${dir}/bad`, "nope\n");
    r = await hexz(["verify", pub, p, "--password-file", `${dir}/bad`]);
    assertEquals(r.code, 1);
    assertMatch(r.err, /wrong password/);
  } finally {
    await done();
  }
});

Deno.test("sign checks the archive first: a damaged index refuses, --check full finds a damaged block, --check none signs the header", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const [priv, pub] = await keygen(dir, "k");
    const good = await richArchive(dir);
    const bytes = await Deno.readFile(good);
    const a = keep(await open(good));
    const page = a.pages[1];
    const block = await a.block("disk", 3000); // text, stored compressed
    a.close();
    // A flipped byte in an index page: refused by default, file untouched.
    const badIndex = `${dir}/bad-index.hxz`;
    await Deno.writeFile(badIndex, flipped(bytes, page.offset + 100));
    let r = await hexz(["sign", priv, badIndex]);
    assertEquals(r.code, 1, r.err);
    assertMatch(r.err, /^hexz: refusing to sign .*bad-index\.hxz: .*page/);
    assertEquals(await Deno.readFile(badIndex), flipped(bytes, page.offset + 100));
    r = await hexz(["sign", "--check", "none", priv, badIndex]);
    assertEquals(r.code, 0, r.err);
    // A flipped byte in a block: the index check passes it, the full check does not.
    const badBlock = `${dir}/bad-block.hxz`;
    await Deno.writeFile(badBlock, flipped(bytes, block.entry.location + 5));
    r = await hexz(["sign", "--check", "full", priv, badBlock]);
    assertEquals(r.code, 1);
    assertMatch(r.err, /refusing to sign .*bad-block\.hxz: disk block \d+/);
    assertEquals((await Deno.stat(badBlock)).size, bytes.length);
    r = await hexz(["sign", priv, badBlock]);
    assertEquals(r.code, 0, r.err);
    r = await hexz(["sign", "--check", "full", priv, good]);
    assertEquals(r.code, 0, r.err);
    r = await hexz(["verify", pub, good]);
    assertEquals(r.code, 0, r.err);
    r = await hexz(["sign", "--check", "sometimes", priv, good]);
    assertEquals(r.code, 2);
  } finally {
    await done();
  }
});

Deno.test("sign --only replaces damaged or foreign trailers with this key's signature", async () => {
  const [dir, done] = await tempDir();
  try {
    const [privA, pubA] = await keygen(dir, "a");
    const [privB, pubB] = await keygen(dir, "b");
    const p = await packBytes(dir, pseudoRandom(100 * KiB, 5));
    const original = await Deno.readFile(p);
    let r = await hexz(["sign", privA, p]);
    assertEquals(r.code, 0, r.err);
    r = await hexz(["sign", privB, p]);
    assertEquals(r.code, 0, r.err);
    // Damage A's trailer: signing again is refused, naming the way out.
    const signed = await Deno.readFile(p);
    await Deno.writeFile(p, flipped(signed, original.length + 50));
    r = await hexz(["sign", privB, p]);
    assertEquals(r.code, 1);
    assertMatch(r.err, /trailer.*--only/);
    r = await hexz(["sign", "--only", privB, p]);
    assertEquals(r.code, 0, r.err);
    assertMatch(r.out, /replaced; 1 signature\)/);
    const file = await Deno.readFile(p);
    assertEquals(file.length, original.length + TRAILER_SIZE);
    assertEquals(file.subarray(0, original.length), original);
    r = await hexz(["verify", pubB, p]);
    assertEquals(r.code, 0, r.err);
    r = await hexz(["verify", pubA, p]);
    assertEquals(r.code, 1);
    // --only on an unsigned archive just signs it.
    const q = await packBytes(dir, pseudoRandom(50 * KiB, 6));
    r = await hexz(["sign", "--only", privA, q]);
    assertEquals(r.code, 0, r.err);
    assertMatch(r.out, /added; 1 signature\)/);
    assertEquals((await hexz(["verify", pubA, q])).code, 0);
  } finally {
    await done();
  }
});

Deno.test("sign of an encrypted archive checks its index only with the password", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const [priv, pub] = await keygen(dir, "k");
    const p = await packBytes(dir, diskData(), { encrypt: { password: "pw-1", kdf: "pbkdf2" } });
    const bytes = await Deno.readFile(p);
    const a = keep(await open(p, { password: "pw-1" }));
    const page = a.pages[0];
    a.close();
    await Deno.writeFile(p, flipped(bytes, page.offset + 200));
    await Deno.writeTextFile(`${dir}/pw`, "pw-1\n");
    // Without the password only the header can be checked: signed.
    let r = await hexz(["sign", priv, p]);
    assertEquals(r.code, 0, r.err);
    // With it, the damaged (encrypted) page is found.
    r = await hexz(["sign", "--password-file", `${dir}/pw`, priv, p]);
    assertEquals(r.code, 1);
    assertMatch(r.err, /refusing to sign/);
    await Deno.writeFile(p, bytes);
    r = await hexz(["sign", "--password-file", `${dir}/pw`, priv, p]);
    assertEquals(r.code, 0, r.err);
    assertEquals((await hexz(["verify", "--password-file", `${dir}/pw`, pub, p])).code, 0);
  } finally {
    await done();
  }
});

/** Runs the CLI on a pseudo-terminal (util-linux `script`); returns what the terminal showed. */
async function onTerminal(args: string[]): Promise<string> {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const quoted = [Deno.execPath(), "run", "-q", "-A", cli, ...args].map((a) => `'${a}'`).join(" ");
  const p = await new Deno.Command("script", {
    args: ["-qec", quoted, "/dev/null"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return new TextDecoder().decode(p.stdout);
}

Deno.test(needs(["script"], {
  name: "sign --check full and verify show progress on a terminal, not with --silent",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const [key, pub] = await keygen(dir, "k");
      const archive = await packBytes(dir, pseudoRandom(2 * 1024 * KiB, 12));
      const signed = await onTerminal(["sign", "--check", "full", key, archive]);
      assertMatch(signed, /check 100% \[=+\]/);
      assertMatch(signed, /signed by key /);
      assertMatch(await onTerminal(["verify", pub, archive]), /verify 100% \[=+\]/);
      const quiet = await onTerminal(["verify", "-q", pub, archive]);
      assertMatch(quiet, /good signature/);
      assert(!quiet.includes("verify 100%"), quiet);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["busybox"], {
  name:
    "verify reads a signed thin archive by URL (its parent beside it); sign of a URL is refused",
  async fn() {
    const [dir, done, keep] = await tempDir();
    const www = `${dir}/www`;
    await Deno.mkdir(www);
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    // busybox httpd answers range requests, as the static servers hexz reads from do.
    const httpd = new Deno.Command("busybox", {
      args: ["httpd", "-f", "-p", `127.0.0.1:${port}`, "-h", www],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const [key, pub] = await keygen(dir, "k");
      const v1 = pseudoRandom(512 * KiB, 21);
      const v2 = v1.slice();
      v2.set(pseudoRandom(64 * KiB, 22), 64 * KiB);
      await Deno.writeFile(`${dir}/v1.img`, v1);
      await Deno.writeFile(`${dir}/v2.img`, v2);
      await pack({ output: `${www}/v1.hxz`, disk: `${dir}/v1.img`, compression: "lz4" });
      const base = keep(await open(`${www}/v1.hxz`));
      await pack({
        output: `${www}/v2.hxz`,
        disk: `${dir}/v2.img`,
        base,
        basePath: `${www}/v1.hxz`,
      });
      base.close();
      assertEquals((await hexz(["sign", key, `${www}/v2.hxz`])).code, 0);
      const url = `http://127.0.0.1:${port}/v2.hxz`;
      const net = ["--allow-read", "--allow-write", "--allow-env", "--allow-net"];
      // busybox may take a moment to listen: inspect (which reads URLs) tells when it does.
      for (let i = 0; i < 50; i++) {
        if ((await hexz(["inspect", url], { perms: net })).code === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      let v = await hexz(["verify", pub, url], { perms: net });
      assertEquals([v.code, v.err], [0, ""]);
      assertMatch(
        v.out,
        /^http:\S*\/v2\.hxz: good signature by key [0-9a-f]{16}; 8 blocks verified\n$/,
      );
      v = await hexz(["verify", pub, url, "--fast"], { perms: net });
      assertEquals(v.code, 0, v.err);
      // The parent is read by URL too: gone from the server, it is named.
      await Deno.rename(`${www}/v1.hxz`, `${dir}/v1.hxz`);
      v = await hexz(["verify", pub, url], { perms: net });
      assertEquals(v.code, 1);
      assertMatch(
        v.err,
        /^hexz: \S*\/v2\.hxz: parent archive \S*v1\.hxz of \S*\/v2\.hxz not found/,
      );
      // Signing writes into the file: a URL is refused in one line, as a usage mistake.
      const s = await hexz(["sign", key, url], { perms: net });
      assertEquals(s.code, 2);
      assertEquals(s.err, `hexz: ${url}: only a local file can be signed (download it first)\n`);
    } finally {
      httpd.kill();
      await httpd.status;
      await done();
    }
  },
}));
