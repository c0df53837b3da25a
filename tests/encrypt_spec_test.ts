/**
 * The claims of docs/SECURITY.md ("Encryption") and docs/FORMAT.md ("Encrypted archives")
 * checked by a reader written here from those pages alone, with other implementations than
 * ours: PBKDF2, AES-256-CTR and AES-256-GCM from node:crypto (hexz uses WebCrypto), Argon2id
 * from hash-wasm, BLAKE3 key derivation and keyed hashing from the b3sum tool. It derives the
 * documented key hierarchy from the password, checks the key check value and the header MAC,
 * decrypts every index page, block and the metadata section, and checks the keyed block hashes,
 * the synthetic nonces and their uniqueness.
 */
import { createDecipheriv, pbkdf2Sync } from "node:crypto";
import { Buffer } from "node:buffer";
import { argon2id } from "hash-wasm";
import { check, type EncryptOptions, HexzError, open, pack } from "../mod.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { hexz } from "./_cli.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";
import { lz4Tool } from "./_lz4frame.ts";

const enc = new TextEncoder();

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}
function unhex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!.map((h) => parseInt(h, 16)));
}
function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.length);
const u32 = (b: Uint8Array, o: number) => dv(b).getUint32(o, true);
const u64 = (b: Uint8Array, o: number) => Number(dv(b).getBigUint64(o, true));

/** b3sum with stdin `input`; returns the 32-byte output. */
async function b3sum(args: string[], input: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command("b3sum", {
    args: ["--no-names", ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(input);
  await w.close();
  const p = await child.output();
  assertEquals(p.code, 0, new TextDecoder().decode(p.stderr));
  return unhex(new TextDecoder().decode(p.stdout).trim());
}
const derive = (ctx: string, material: Uint8Array) => b3sum(["--derive-key", ctx], material);
const plainHash = (data: Uint8Array) => b3sum([], data);
/** Keyed BLAKE3: b3sum reads the 32-byte key from stdin and the message from a file. */
async function keyed(key: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
  const path = await Deno.makeTempFile({ prefix: "hexz-keyed-" });
  try {
    await Deno.writeFile(path, message);
    const p = await new Deno.Command("b3sum", {
      args: ["--no-names", "--keyed", path],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = p.stdin.getWriter();
    await w.write(key);
    await w.close();
    const o = await p.output();
    assertEquals(o.code, 0, new TextDecoder().decode(o.stderr));
    return unhex(new TextDecoder().decode(o.stdout).trim());
  } finally {
    await Deno.remove(path);
  }
}

function gcmOpen(key: Uint8Array, sealed: Uint8Array, ad: string): Uint8Array {
  const nonce = sealed.subarray(0, 12);
  const tag = sealed.subarray(sealed.length - 16);
  const d = createDecipheriv("aes-256-gcm", key, nonce);
  d.setAAD(Buffer.from(ad));
  d.setAuthTag(tag);
  return cat(d.update(sealed.subarray(12, sealed.length - 16)), d.final());
}

interface Keys {
  password: Uint8Array;
  identity: Uint8Array;
  keyCheck: Uint8Array;
  block: Uint8Array;
  section: Uint8Array;
  nonce: Uint8Array;
  index: Uint8Array;
  mac: Uint8Array;
}

/** The hierarchy of SECURITY.md, "Keys", from the password key and the header's salts. */
async function hierarchy(passwordKey: Uint8Array, header: Uint8Array): Promise<Keys> {
  const archiveSalt = header.subarray(1056, 1088);
  const chainSalt = header.subarray(1088, 1120);
  const chain = cat(passwordKey, chainSalt);
  const own = cat(passwordKey, chainSalt, archiveSalt);
  const v = "hexz 2025-06 v1";
  return {
    password: passwordKey,
    identity: await derive(`${v} block identity key`, chain),
    keyCheck: await derive(`${v} key check key`, chain),
    block: await derive(`${v} block encryption key`, own),
    section: await derive(`${v} section encryption key`, own),
    nonce: await derive(`${v} synthetic nonce key`, own),
    index: await derive(`${v} index page encryption key`, own),
    mac: await derive(`${v} header MAC key`, own),
  };
}

/** The synthetic nonce: keyed BLAKE3 of u32le(len(ad)) || ad || payload, first 12 bytes. */
async function syntheticNonce(key: Uint8Array, ad: string, payload: Uint8Array) {
  const len = new Uint8Array(4);
  dv(len).setUint32(0, ad.length, true);
  return (await keyed(key, cat(len, enc.encode(ad), payload))).subarray(0, 12);
}

interface Block {
  stream: number;
  offset: number;
  kind: number;
  codec: number;
  flags: number;
  location: number;
  stored: number;
  logical: number;
  hash: Uint8Array;
}

/** Master index (plain), then each page's entries decrypted with AES-256-CTR (node:crypto);
 * a compressed page (feature bit 4, record byte 1 = 1) is decrypted, then its LZ4 block decoded
 * by the `lz4` tool. */
async function readIndex(file: Uint8Array, indexKey: Uint8Array): Promise<Block[]> {
  const h = file.subarray(0, 4096);
  const master = file.subarray(u64(h, 80), u64(h, 80) + u64(h, 88));
  assertEquals(new TextDecoder().decode(master.subarray(0, 4)), "HXMI", "the master is plain");
  const blocks: Block[] = [];
  for (let i = 0; i < u32(master, 8); i++) {
    const rec = master.subarray(16 + 72 * i, 16 + 72 * (i + 1));
    const count = u32(rec, 4), pageAt = u64(rec, 24), pageLen = u32(rec, 32);
    let offset = u64(rec, 16);
    const page = file.subarray(pageAt, pageAt + pageLen);
    assertEquals(new TextDecoder().decode(page.subarray(0, 4)), "HXPG");
    assertEquals(u32(page, 8), count, "page header stays plain");
    const counter = new Uint8Array(16);
    dv(counter).setBigUint64(0, BigInt(pageAt), true); // then 4 zero bytes, then 0 (BE)
    const d = createDecipheriv("aes-256-ctr", indexKey, counter);
    const packed = (u32(file, 12) & (1 << 4)) !== 0 && rec[1] === 1;
    assertEquals(pageLen === 32 + 56 * count + 32, !packed, "a compressed page is shorter");
    let entries = cat(d.update(page.subarray(32, pageLen - 32)), d.final());
    if (packed) entries = await lz4Tool(entries);
    assertEquals(entries.length, 56 * count);
    for (let e = 0; e < count; e++) {
      const b = entries.subarray(56 * e, 56 * (e + 1));
      const logical = u32(b, 12);
      blocks.push({
        stream: rec[0],
        offset,
        kind: b[16],
        codec: b[17],
        flags: b[18],
        location: u64(b, 0),
        stored: u32(b, 8),
        logical,
        hash: b.slice(24, 56),
      });
      offset += logical;
    }
  }
  return blocks;
}

/** What SECURITY.md and FORMAT.md say of every byte of an encrypted archive, checked. */
async function checkArchive(
  path: string,
  passwordKey: Uint8Array,
  input: Uint8Array,
  nonceMode: 1 | 2,
  metadata: unknown | null,
): Promise<Uint8Array[]> {
  const file = await Deno.readFile(path);
  const h = file.subarray(0, 4096);
  assertEquals(u32(h, 12) & 1, 1, "feature bit 0");
  assertEquals([h[1152], h[1153]], [nonceMode, 1], "nonce mode, cipher");
  const k = await hierarchy(passwordKey, h);
  assertEquals(h.subarray(1120, 1152), await keyed(k.keyCheck, enc.encode("hexz key check v1")));
  const macInput = h.slice(0, 4064);
  macInput.fill(0, 1168, 1200);
  assertEquals(h.subarray(1168, 1200), await keyed(k.mac, macInput), "header MAC");

  const blocks = await readIndex(file, k.index);
  const out = new Uint8Array(input.length);
  const nonces: Uint8Array[] = [];
  for (const b of blocks.filter((b) => b.stream === 0)) {
    const want = input.subarray(b.offset, b.offset + b.logical);
    // Block hashes are keyed: identity key over the plain BLAKE3-256 of the logical bytes.
    assertEquals(b.hash, await keyed(k.identity, await plainHash(want)), `hash @${b.offset}`);
    if (b.kind === 1) continue; // zero: nothing stored
    assert(b.kind === 0 || b.kind === 2, `kind ${b.kind}`);
    assertEquals(b.flags, 1, "flag bit 0 on data and dedup entries");
    assertEquals(b.codec, 0, "packed with --compression none");
    assertEquals(b.stored, b.logical + 28, "stored = payload + 28");
    const sealed = file.subarray(b.location, b.location + b.stored);
    const plain = gcmOpen(k.block, sealed, "hexz block");
    assertEquals(plain, want, `block @${b.offset}`);
    out.set(plain, b.offset);
    if (b.kind === 0) {
      nonces.push(sealed.slice(0, 12));
      if (nonceMode === 1) {
        assertEquals(sealed.subarray(0, 12), await syntheticNonce(k.nonce, "hexz block", plain));
      }
    }
  }
  assertEquals(out, input, "every byte of the disk from the spec reader");
  // The metadata section: sealed under the section key with its own additional data.
  const metaAt = u64(h, 304), metaLen = u64(h, 312);
  if (metadata === null) {
    assertEquals(metaLen, 0, "no metadata section");
    assertEquals(new Set(nonces.map(hex)).size, nonces.length, "no nonce repeats in an archive");
    return nonces;
  }
  const sealed = file.subarray(metaAt, metaAt + metaLen);
  const meta = gcmOpen(k.section, sealed, "hexz section metadata");
  assertEquals(sealed.length, meta.length + 28, "sealed section = plaintext + 28");
  assertEquals(JSON.parse(new TextDecoder().decode(meta)), metadata);
  if (nonceMode === 1) {
    assertEquals(
      sealed.subarray(0, 12),
      await syntheticNonce(k.nonce, "hexz section metadata", meta),
    );
  }
  nonces.push(sealed.slice(0, 12));
  assertEquals(new Set(nonces.map(hex)).size, nonces.length, "no nonce repeats in an archive");
  return nonces;
}

/** 1 KiB blocks: distinct random ones, a zero one, a repeated one. */
function sample(): Uint8Array {
  const d = new Uint8Array(12 * 1024 + 300);
  d.set(pseudoRandom(6 * 1024, 81));
  d.set(d.subarray(0, 1024), 8 * 1024); // a dedup of block 0
  d.set(pseudoRandom(3 * 1024 + 300, 82), 9 * 1024);
  return d;
}

Deno.test(needs(["b3sum"], {
  name: "encryption spec: PBKDF2 key, subkeys, key check, MAC, pages, blocks, synthetic nonces",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const input = sample();
      await Deno.writeFile(`${dir}/d.img`, input);
      // SECURITY.md: the password is taken in Unicode NFC form.
      const decomposed = "cafe\u0301 secret";
      const encrypt: EncryptOptions = {
        password: decomposed,
        kdf: { name: "pbkdf2", memoryKiB: 0, iterations: 1000, parallelism: 0 },
      };
      const metadata = { note: "sealed under the section key" };
      const opts = {
        disk: `${dir}/d.img`,
        compression: "none" as const,
        blockSize: 1024,
        metadata,
      };
      await pack({ ...opts, output: `${dir}/a.hxz`, encrypt });
      const h = (await Deno.readFile(`${dir}/a.hxz`)).subarray(0, 4096);
      // KDF field: algorithm 2, version 0, 2 zero bytes, memory 0, iterations, lanes 0, zeros.
      assertEquals([h[1008], h[1009], h[1010], h[1011]], [2, 0, 0, 0]);
      assertEquals([u32(h, 1012), u32(h, 1016), u32(h, 1020)], [0, 1000, 0]);
      assert(h.subarray(1024, 1056).every((b) => b === 0));
      const key = pbkdf2Sync("caf\u00e9 secret", h.subarray(1088, 1120), 1000, 32, "sha256");
      const nonces = await checkArchive(`${dir}/a.hxz`, key, input, 1, metadata);

      // Synthetic nonces are a function of the bytes and the archive's key: packed again
      // (new salts), nothing repeats across the two archives.
      await pack({ ...opts, output: `${dir}/b.hxz`, encrypt });
      const hb = (await Deno.readFile(`${dir}/b.hxz`)).subarray(0, 4096);
      assert(hex(hb.subarray(1056, 1088)) !== hex(h.subarray(1056, 1088)), "archive salt");
      assert(hex(hb.subarray(1088, 1120)) !== hex(h.subarray(1088, 1120)), "chain salt");
      const keyB = pbkdf2Sync("caf\u00e9 secret", hb.subarray(1088, 1120), 1000, 32, "sha256");
      const again = await checkArchive(`${dir}/b.hxz`, keyB, input, 1, metadata);
      const first = new Set(nonces.map(hex));
      assert(again.every((n) => !first.has(hex(n))), "a nonce repeated across archives");

      // Random-nonce mode: the same reader, nonce mode 2.
      await pack({ ...opts, output: `${dir}/r.hxz`, encrypt: { ...encrypt, randomNonce: true } });
      const hr = (await Deno.readFile(`${dir}/r.hxz`)).subarray(0, 4096);
      const keyR = pbkdf2Sync("caf\u00e9 secret", hr.subarray(1088, 1120), 1000, 32, "sha256");
      await checkArchive(`${dir}/r.hxz`, keyR, input, 2, metadata);

      // A thin child: chain salt and KDF copied, its own archive salt, same password key.
      await Deno.writeFile(`${dir}/d2.img`, input.map((b, i) => (i < 1024 ? b ^ 0xff : b)));
      const parent = await open(`${dir}/a.hxz`, { password: decomposed });
      try {
        await pack({
          disk: `${dir}/d2.img`,
          compression: "none",
          output: `${dir}/c.hxz`,
          base: parent,
          encrypt: { password: decomposed },
        });
      } finally {
        parent.close();
      }
      const hc = (await Deno.readFile(`${dir}/c.hxz`)).subarray(0, 4096);
      assertEquals(hc.subarray(1008, 1056), h.subarray(1008, 1056), "KDF field copied");
      assertEquals(hc.subarray(1088, 1120), h.subarray(1088, 1120), "chain salt copied");
      assert(hex(hc.subarray(1056, 1088)) !== hex(h.subarray(1056, 1088)), "own archive salt");
      const kc = await hierarchy(key, hc);
      assertEquals(
        hc.subarray(1120, 1152),
        await keyed(kc.keyCheck, enc.encode("hexz key check v1")),
      );
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["b3sum"], {
  name: "encryption spec: default KDF parameters as documented, Argon2id key from hash-wasm",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const input = sample();
      await Deno.writeFile(`${dir}/d.img`, input);
      await Deno.writeTextFile(`${dir}/pw`, "hunter2 but longer\n");
      const base = [
        "pack",
        "--disk",
        `${dir}/d.img`,
        "--compression",
        "none",
        "--block-size",
        "1K",
      ];
      const pw = ["--encrypt", "--password-file", `${dir}/pw`, "--silent"];
      let r = await hexz([...base, `${dir}/a.hxz`, ...pw]);
      assertEquals(r.code, 0, r.err);
      r = await hexz([...base, `${dir}/p.hxz`, ...pw, "--kdf", "pbkdf2"]);
      assertEquals(r.code, 0, r.err);
      const h = (await Deno.readFile(`${dir}/a.hxz`)).subarray(0, 4096);
      // Argon2id (1), version 0x13, 64 MiB, 3 passes, 1 lane.
      assertEquals([h[1008], h[1009], u32(h, 1012), u32(h, 1016), u32(h, 1020)], [
        1,
        0x13,
        64 * 1024,
        3,
        1,
      ]);
      const hp = (await Deno.readFile(`${dir}/p.hxz`)).subarray(0, 4096);
      assertEquals([hp[1008], u32(hp, 1012), u32(hp, 1016), u32(hp, 1020)], [2, 0, 600_000, 0]);
      // The password file's first line is the password.
      const key = await argon2id({
        password: "hunter2 but longer",
        salt: h.slice(1088, 1120),
        parallelism: 1,
        iterations: 3,
        memorySize: 64 * 1024,
        hashLength: 32,
        outputType: "binary",
      });
      await checkArchive(`${dir}/a.hxz`, key, input, 1, null);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["b3sum", "lz4"], {
  name: "encryption spec: a compressed index page is compressed, then encrypted",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      // 300 blocks of 1 KiB, all zero but two: the page's entries compress.
      const input = new Uint8Array(300 * 1024);
      input.set(pseudoRandom(1024, 83), 0);
      input.set(pseudoRandom(1024, 84), 150 * 1024);
      await Deno.writeFile(`${dir}/d.img`, input);
      const encrypt: EncryptOptions = {
        password: "zero runs",
        kdf: { name: "pbkdf2", memoryKiB: 0, iterations: 1000, parallelism: 0 },
      };
      await pack({
        disk: `${dir}/d.img`,
        compression: "none",
        blockSize: 1024,
        output: `${dir}/a.hxz`,
        encrypt,
      });
      const f = await Deno.readFile(`${dir}/a.hxz`);
      assertEquals(u32(f, 12), 1 | (1 << 4), "encrypted, compressedIndex");
      const key = pbkdf2Sync("zero runs", f.subarray(1088, 1120), 1000, 32, "sha256");
      await checkArchive(`${dir}/a.hxz`, key, input, 1, null);
    } finally {
      await done();
    }
  },
}));

Deno.test("encryption spec: wrong password, tampered ciphertext, tampered header", async () => {
  const [dir, done] = await tempDir();
  try {
    const input = sample();
    await Deno.writeFile(`${dir}/d.img`, input);
    const password = "right one";
    const kdf = { name: "pbkdf2" as const, memoryKiB: 0, iterations: 1000, parallelism: 0 };
    await pack({
      output: `${dir}/a.hxz`,
      disk: `${dir}/d.img`,
      compression: "none",
      blockSize: 1024,
      encrypt: { password, kdf },
    });
    const good = await Deno.readFile(`${dir}/a.hxz`);
    const e = await assertRejects(() => open(`${dir}/a.hxz`, { password: "wrong" }), HexzError);
    assertEquals([(e as HexzError).code, e.message.includes("wrong password")], ["password", true]);
    // Without the password: the header, and no data.
    const a = await open(`${dir}/a.hxz`);
    try {
      await assertRejects(() => a.read("disk", 0, 10), HexzError, /archive is encrypted/);
    } finally {
      a.close();
    }
    // One bit of one block's ciphertext flipped, and its page and master hashes left as they
    // were: the GCM tag refuses it (the hash chain would catch it too: below, a fixed chain).
    const file = good.slice();
    const at = 4096 + 100; // inside the first stored block (payloads follow the header)
    file[at] ^= 0x10;
    await Deno.writeFile(`${dir}/t.hxz`, file);
    const t = await open(`${dir}/t.hxz`, { password });
    try {
      await assertRejects(() => t.read("disk", 0, input.length), HexzError);
      await assertRejects(() => check(t), HexzError);
    } finally {
      t.close();
    }
    await Deno.writeTextFile(`${dir}/pw`, `${password}\n`);
    const cli = await hexz(["check", `${dir}/t.hxz`, "--password-file", `${dir}/pw`]);
    assertEquals(cli.code, 1, cli.err);
    assertMatch(cli.err, /^hexz: [^\n]+\n$/);
    // The creation time changed and the header checksum recomputed (so the root hash is
    // valid): only the MAC tells, once the password is known.
    const { blake3 } = await import("hash-wasm");
    const hdr = good.slice();
    hdr[40] ^= 0x20;
    hdr.set(unhex(await blake3(hdr.subarray(0, 4064))), 4064);
    await Deno.writeFile(`${dir}/h.hxz`, hdr);
    await open(`${dir}/h.hxz`).then((x) => x.close()); // opens for its header without the key
    await assertRejects(
      () => open(`${dir}/h.hxz`, { password }),
      HexzError,
      /header authentication failed/,
    );
  } finally {
    await done();
  }
});

Deno.test("encryption spec: KDF fields outside FORMAT.md's bounds are refused before any KDF runs", async () => {
  const [dir, done] = await tempDir();
  try {
    await Deno.writeFile(`${dir}/d.img`, sample());
    const password = "pw";
    const kdf = { name: "argon2id" as const, memoryKiB: 64, iterations: 1, parallelism: 1 };
    await pack({ output: `${dir}/a.hxz`, disk: `${dir}/d.img`, encrypt: { password, kdf } });
    const good = await Deno.readFile(`${dir}/a.hxz`);
    const { blake3 } = await import("hash-wasm");
    /** The archive with its KDF field rewritten (and the header checksum made right again). */
    const withKdf = async (name: string, set: (f: DataView, b: Uint8Array) => void) => {
      const b = good.slice();
      const field = b.subarray(1008, 1056);
      set(new DataView(b.buffer, 1008, 48), field);
      b.set(unhex(await blake3(b.subarray(0, 4064))), 4064);
      await Deno.writeFile(`${dir}/${name}.hxz`, b);
      return `${dir}/${name}.hxz`;
    };
    // [algorithm, version, memory KiB, passes or iterations, lanes]
    const argon = (m: number, t: number, p: number) => (f: DataView) => {
      f.setUint8(0, 1), f.setUint8(1, 0x13);
      f.setUint32(4, m, true), f.setUint32(8, t, true), f.setUint32(12, p, true);
    };
    const pbkdf2 = (m: number, t: number, p: number, v = 0) => (f: DataView) => {
      f.setUint8(0, 2), f.setUint8(1, v);
      f.setUint32(4, m, true), f.setUint32(8, t, true), f.setUint32(12, p, true);
    };
    const refused: [string, (f: DataView, b: Uint8Array) => void][] = [
      ["argon2id 0 lanes", argon(64, 1, 0)],
      ["argon2id 65 lanes", argon(65 * 8, 1, 65)],
      ["argon2id 0 passes", argon(64, 0, 1)],
      ["argon2id 65 passes", argon(64, 65, 1)],
      ["argon2id below 8 KiB a lane", argon(8 * 4 - 1, 1, 4)],
      ["argon2id above 1 GiB", argon(1024 * 1024 + 1, 1, 1)],
      ["argon2id version 0x10", (f, b) => (argon(64, 1, 1)(f), b[1] = 0x10)],
      ["pbkdf2 0 iterations", pbkdf2(0, 0, 0)],
      ["pbkdf2 above 50,000,000", pbkdf2(0, 50_000_001, 0)],
      ["pbkdf2 with memory", pbkdf2(1, 1000, 0)],
      ["pbkdf2 with lanes", pbkdf2(0, 1000, 1)],
      ["pbkdf2 version 1", pbkdf2(0, 1000, 0, 1)],
      ["unknown algorithm 3", (f, b) => (argon(64, 1, 1)(f), b[0] = 3)],
      ["non-zero bytes 2..4", (f, b) => (argon(64, 1, 1)(f), b[2] = 1)],
      ["non-zero reserved tail", (f, b) => (argon(64, 1, 1)(f), b[47] = 1)],
    ];
    for (const [what, set] of refused) {
      const path = await withKdf("bad", set);
      const started = performance.now();
      const e = await assertRejects(() => open(path, { password }), HexzError);
      assert(!/wrong password/.test(e.message), `${what}: ${e.message}`);
      assert(performance.now() - started < 5000, `${what}: took ${performance.now() - started} ms`);
    }
    // At the edges, inside: the KDF runs (with other parameters, so another key: wrong
    // password), the field itself is accepted.
    for (
      const [what, set] of [
        ["argon2id 64 lanes at 8 KiB each", argon(512, 1, 64)],
        ["argon2id 64 passes", argon(8, 64, 1)],
        ["pbkdf2 1 iteration", pbkdf2(0, 1, 0)],
      ] as const
    ) {
      const path = await withKdf("edge", set);
      const e = await assertRejects(() => open(path, { password }), HexzError);
      assertMatch(e.message, /wrong password/, what);
    }
  } finally {
    await done();
  }
});
