/**
 * Encrypted overlays (version 2) checked against docs/FORMAT.md, "Overlay version 2", and
 * docs/SECURITY.md, "Overlays", by a reader written here from those pages alone, with other
 * implementations than ours: Argon2id and BLAKE3 from hash-wasm, BLAKE3 key derivation from the
 * b3sum tool, AES-256-GCM from node:crypto (hexz uses WebCrypto). It derives each session key
 * from the password, decrypts every block, checks every tag and sequence number, replays the log
 * and compares with what was written through `serve --nbd --rw` (qemu-io) and the library. Also:
 * nothing written appears in the clear, tampering is detected, nonces never repeat under a key,
 * compaction re-keys, commit stays encrypted, and random writes and reopens read back.
 */
import { createDecipheriv } from "node:crypto";
import { Buffer } from "node:buffer";
import { argon2id, blake3 as wasmBlake3 } from "hash-wasm";
import { HexzError, open, openOverlay, pack } from "../mod.ts";
import { serveNbd } from "../serve/nbd.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { assertBytesEqual } from "./_archive.ts";
import { hexz } from "./_cli.ts";
import { Prng } from "./_prng.ts";
import { needs, pseudoRandom, smallTmpfs, tempDir } from "./_tools.ts";

const BLOCK = 4096;
const SEALED = BLOCK + 16;
const MiB = 1 << 20;
const PASSWORD = "correct horse";
const KDF = { name: "argon2id" as const, memoryKiB: 256, iterations: 1, parallelism: 1 };
const CONTEXT = "hexz 2026-12 v2 overlay block encryption key";

function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}
const unhex = (s: string) => Uint8Array.from(s.match(/../g)!.map((h) => parseInt(h, 16)));
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.length);
const u16 = (b: Uint8Array, o: number) => dv(b).getUint16(o, true);
const u32 = (b: Uint8Array, o: number) => dv(b).getUint32(o, true);
const u64 = (b: Uint8Array, o: number) => Number(dv(b).getBigUint64(o, true));
const ascii = (b: Uint8Array) => new TextDecoder().decode(b);
const b3 = async (...parts: Uint8Array[]) => unhex(await wasmBlake3(cat(...parts)));

async function derive(ctx: string, material: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command("b3sum", {
    args: ["--no-names", "--derive-key", ctx],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(material);
  await w.close();
  const p = await child.output();
  assertEquals(p.code, 0, new TextDecoder().decode(p.stderr));
  return unhex(new TextDecoder().decode(p.stdout).trim());
}

/** The password key of an encrypted archive (FORMAT.md: chain salt at header 1088..1120). */
async function passwordKey(archive: Uint8Array, password: string): Promise<Uint8Array> {
  const h = archive.subarray(0, 4096);
  assertEquals([h[1008], u32(h, 1012), u32(h, 1016), u32(h, 1020)], [1, 256, 1, 1], "KDF");
  return await argon2id({
    password,
    salt: h.slice(1088, 1120),
    parallelism: 1,
    iterations: 1,
    memorySize: 256,
    hashLength: 32,
    outputType: "binary",
  });
}

function nonce(seq: number, index: number): Uint8Array {
  const n = new Uint8Array(12);
  dv(n).setBigUint64(0, BigInt(seq), true);
  dv(n).setUint32(8, index, true);
  return n;
}
function aad(kind: number, stream: number, count: number, block: number): Uint8Array {
  const a = new Uint8Array(16);
  a[0] = kind;
  a[1] = stream;
  dv(a).setUint32(4, count, true);
  dv(a).setBigUint64(8, BigInt(block), true);
  return a;
}
/** AES-256-GCM open with node:crypto; null when the tag fails. */
function gcmOpen(
  key: Uint8Array,
  iv: Uint8Array,
  ad: Uint8Array,
  ct: Uint8Array,
  tag: Uint8Array,
): Uint8Array | null {
  try {
    const d = createDecipheriv("aes-256-gcm", key, iv);
    d.setAAD(Buffer.from(ad));
    d.setAuthTag(tag);
    return cat(d.update(ct), d.final());
  } catch {
    return null;
  }
}

interface Rec {
  at: number;
  stream: number;
  kind: number;
  first: number;
  count: number;
  seq: number;
  /** Data records: the decrypted blocks. */
  plain: Uint8Array;
  /** The session key it is sealed with (hex), and the nonces it uses. */
  key: string;
  nonces: string[];
}

/** Reads a version 2 overlay as FORMAT.md describes it; every documented field is asserted. */
async function readSpec(file: Uint8Array, base: Uint8Array, pwKey: Uint8Array) {
  const h = file.subarray(0, 4096);
  assertEquals(ascii(h.subarray(0, 4)), "HXOV");
  assertEquals(u16(h, 4), 2, "version");
  assertEquals(u32(h, 8), 4096, "block size");
  assertEquals(h.subarray(16, 32), base.subarray(24, 40), "base UUID");
  assertEquals(h.subarray(32, 64), base.subarray(4064, 4096), "base root hash");
  const sizes = [u64(h, 64), u64(h, 72)];
  assertEquals(sizes, [u64(base, 128), u64(base, 192)], "stream sizes");
  const fileSalt = h.slice(80, 112);
  assert(fileSalt.some((b) => b !== 0), "a file salt");
  assert(h.subarray(112, 4064).every((b) => b === 0), "reserved 112..4064 zero");
  assertEquals(h.subarray(4064, 4096), await b3(h.subarray(0, 4064)), "header checksum");
  const chainSalt = base.slice(1088, 1120);

  const records: Rec[] = [];
  let key: Uint8Array | null = null;
  let at = 4096;
  while (at < file.length) {
    const r = file.subarray(at);
    assertEquals(ascii(r.subarray(0, 4)), "HXOR", `record at ${at}: magic`);
    const stream = r[4], kind = r[5];
    const first = u64(r, 8), count = u32(r, 16), seq = u64(r, 24);
    assertEquals(seq, records.length, `record at ${at}: sequence number`);
    assert(kind <= 2, `record at ${at}: kind ${kind}`);
    const len = 64 + (kind === 0 ? SEALED * count : kind === 1 ? 16 : 32);
    const payload = r.subarray(64, len);
    assertEquals(payload.length, len - 64, `record at ${at}: torn`);
    assertEquals(r.subarray(32, 64), await b3(r.subarray(0, 32), payload), `record ${at} sum`);
    const rec: Rec = {
      at,
      stream,
      kind,
      first,
      count,
      seq,
      plain: new Uint8Array(0),
      key: "",
      nonces: [],
    };
    if (kind === 2) {
      assertEquals([stream, first, count], [0, 0, 0], `key record at ${at}`);
      key = await derive(CONTEXT, cat(pwKey, chainSalt, fileSalt, payload));
    } else {
      assert(key, `record at ${at} before any key record`);
      assert(stream <= 1 && count >= 1 && count <= 1024, `record at ${at}: stream/count`);
      assert(first + count <= Math.ceil(sizes[stream] / BLOCK), `record at ${at}: past the end`);
      rec.key = hex(key);
      if (kind === 1) {
        const ok = gcmOpen(
          key,
          nonce(seq, 0),
          aad(1, stream, count, first),
          new Uint8Array(0),
          payload,
        );
        assert(ok, `zero record at ${at}: tag`);
        rec.nonces.push(hex(nonce(seq, 0)));
      } else {
        const plain = new Uint8Array(count * BLOCK);
        for (let i = 0; i < count; i++) {
          const s = payload.subarray(i * SEALED, (i + 1) * SEALED);
          const p = gcmOpen(
            key,
            nonce(seq, i),
            aad(0, stream, 1, first + i),
            s.subarray(0, BLOCK),
            s.subarray(BLOCK),
          );
          assert(p, `record at ${at}, block ${i}: tag`);
          plain.set(p, i * BLOCK);
          rec.nonces.push(hex(nonce(seq, i)));
        }
        rec.plain = plain;
      }
    }
    records.push(rec);
    at += len;
  }
  assertEquals(at, file.length, "the file ends with its last record");
  assertEquals(records[0]?.kind ?? 2, 2, "the first record is a key record");
  return { sizes, fileSalt, records };
}

/** Replays records over the base streams: the last record covering a block wins. */
function replay(streams: Uint8Array[], records: Rec[]): Uint8Array[] {
  const out = streams.map((s) => s.slice());
  for (const r of records) {
    if (r.kind === 2) continue;
    for (let i = 0; i < r.count; i++) {
      const s = out[r.stream];
      const start = (r.first + i) * BLOCK, end = Math.min(s.length, start + BLOCK);
      if (r.kind === 0) s.set(r.plain.subarray(i * BLOCK, i * BLOCK + end - start), start);
      else s.fill(0, start, end);
    }
  }
  return out;
}

/** No (key, nonce) pair is used twice. */
function assertNoncesUnique(records: Rec[], what: string) {
  const seen = new Set<string>();
  for (const r of records) {
    for (const n of r.nonces) {
      assert(!seen.has(r.key + n), `${what}: nonce ${n} used twice under one key`);
      seen.add(r.key + n);
    }
  }
}

/** Whether `needle` occurs in `hay`. */
function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

async function encryptedBase(dir: string, disk: Uint8Array, mem?: Uint8Array) {
  await Deno.writeFile(`${dir}/d.img`, disk);
  if (mem) await Deno.writeFile(`${dir}/m.img`, mem);
  await pack({
    output: `${dir}/b.hxz`,
    disk: `${dir}/d.img`,
    memory: mem ? `${dir}/m.img` : undefined,
    encrypt: { password: PASSWORD, kdf: KDF },
  });
  const bytes = await Deno.readFile(`${dir}/b.hxz`);
  return { bytes, pwKey: await passwordKey(bytes, PASSWORD) };
}

Deno.test(needs(["qemu-io", "b3sum"], {
  name: "encrypted overlay: written through NBD and the library, as FORMAT.md describes, sealed",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const disk = pseudoRandom(5 * MiB + 1000, 81);
      const mem = pseudoRandom(50_000, 82);
      const { bytes: baseBytes, pwKey } = await encryptedBase(dir, disk, mem);
      const ovPath = `${dir}/o.hxo`;
      const want = [disk.slice(), mem.slice()];
      const secret = pseudoRandom(3 * BLOCK + 100, 83); // what must never lie in the clear
      const archive = await open(`${dir}/b.hxz`, { password: PASSWORD });
      try {
        const server = await serveNbd(archive, {
          socket: `${dir}/s.sock`,
          readOnly: false,
          overlay: ovPath,
        });
        try {
          const writes: [string, (d: Uint8Array) => void][] = [
            ["write -P 0xab 4096 8192", (d) => d.fill(0xab, 4096, 4096 + 8192)],
            ["write -P 0xcd 5000 3", (d) => d.fill(0xcd, 5000, 5003)],
            ["write -z 65536 20000", (d) => d.fill(0, 65536, 65536 + 20000)],
            ["write -P 0x11 512k 4600k", (d) => d.fill(0x11, 512 * 1024, (512 + 4600) * 1024)],
            ["write -P 0x22 4096 4096", (d) => d.fill(0x22, 4096, 8192)],
          ];
          for (const [cmd, apply] of writes) {
            const p = await new Deno.Command("qemu-io", {
              args: ["-f", "raw", server.address, "-c", cmd, "-c", "flush"],
              stdout: "piped",
              stderr: "piped",
            }).output();
            const text = new TextDecoder().decode(p.stdout) + new TextDecoder().decode(p.stderr);
            assert(p.code === 0 && !/fail|error/i.test(text), `${cmd}: ${text}`);
            apply(want[0]);
          }
        } finally {
          await server.close();
        }
        // A second session, through the library: disk and memory, data and zeroes.
        const ov = await openOverlay(ovPath, archive);
        try {
          assert(ov.encrypted);
          await ov.write("disk", 3 * MiB + 7, secret);
          want[0].set(secret, 3 * MiB + 7);
          await ov.write("memory", 100, new Uint8Array(5000).fill(0x33));
          want[1].fill(0x33, 100, 5100);
          await ov.writeZeroes("memory", 45_000, 5000);
          want[1].fill(0, 45_000);
          await ov.flush();
          assertBytesEqual(await ov.read("disk", 0, disk.length), want[0], "read back");
        } finally {
          ov.close();
        }
      } finally {
        archive.close();
      }

      const file = await Deno.readFile(ovPath);
      const { fileSalt, records } = await readSpec(file, baseBytes, pwKey);
      assertEquals(records.filter((r) => r.kind === 2).length, 2, "one key record a session");
      assert(records.some((r) => r.kind === 1 && r.stream === 0), "a zero record");
      assert(records.some((r) => r.count === 1024), "a record of the largest size");
      const out = replay([disk, mem], records);
      assertBytesEqual(out[0], want[0], "disk replayed by the spec reader");
      assertBytesEqual(out[1], want[1], "memory replayed by the spec reader");
      assertNoncesUnique(records, "written");
      // Nothing written is in the clear: not the library's bytes, not qemu-io's patterns.
      assert(!contains(file, secret.subarray(0, 64)), "written bytes in the clear");
      for (const p of [0xab, 0x11, 0x22, 0x33]) {
        assert(!contains(file, new Uint8Array(64).fill(p)), `pattern ${p} in the clear`);
      }

      // `hexz overlay` needs no password for what the record headers say.
      const r = await hexz(["overlay", ovPath, "--base", `${dir}/b.hxz`, "--json"]);
      assertEquals(r.code, 0, r.err);
      assertEquals(JSON.parse(r.out).records, records.length);
      assertEquals(JSON.parse(r.out).encrypted, true);

      // Compaction re-encrypts: a new file salt, one new session, the same content.
      const c = await hexz(["overlay", ovPath, "--base", `${dir}/b.hxz`, "--compact"], {
        env: { HEXZ_PASSWORD: PASSWORD },
      });
      assertEquals(c.code, 0, c.err);
      const compacted = await Deno.readFile(ovPath);
      const after = await readSpec(compacted, baseBytes, pwKey);
      assert(hex(after.fileSalt) !== hex(fileSalt), "compaction keeps the file salt");
      assertEquals(after.records.filter((r) => r.kind === 2).length, 1);
      const oldKeys = new Set(records.map((r) => r.key));
      assert(after.records.every((r) => r.kind === 2 || !oldKeys.has(r.key)), "old key reused");
      assertNoncesUnique([...records, ...after.records], "across compaction");
      const again = replay([disk, mem], after.records);
      assertBytesEqual(again[0], want[0], "disk after compaction");
      assertBytesEqual(again[1], want[1], "memory after compaction");
      assert(compacted.length < file.length, "compaction dropped dead blocks");

      // Commit: an encrypted archive with what was written, in which nothing is in the clear.
      const cm = await hexz(["commit", `${dir}/b.hxz`, ovPath, `${dir}/c.hxz`, "-q"], {
        env: { HEXZ_PASSWORD: PASSWORD },
      });
      assertEquals(cm.code, 0, cm.err);
      const committed = await open(`${dir}/c.hxz`, { password: PASSWORD });
      try {
        assert(committed.header.encryption, "the commit is encrypted");
        assertBytesEqual(await committed.read("disk", 0, disk.length), want[0], "commit disk");
        assertBytesEqual(await committed.read("memory", 0, mem.length), want[1], "commit mem");
      } finally {
        committed.close();
      }
      assert(!contains(await Deno.readFile(`${dir}/c.hxz`), secret.subarray(0, 64)));
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["b3sum"], {
  name: "encrypted overlay: changed blocks, tags, swaps and reordering are detected",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const disk = pseudoRandom(64 * BLOCK, 91);
      const { bytes: baseBytes, pwKey } = await encryptedBase(dir, disk);
      const archive = await open(`${dir}/b.hxz`, { password: PASSWORD });
      try {
        const ov = await openOverlay(`${dir}/o.hxo`, archive, { create: true });
        await ov.write("disk", 0, pseudoRandom(4 * BLOCK, 92)); // record 1: blocks 0..3
        await ov.writeZeroes("disk", 10 * BLOCK, 2 * BLOCK); // record 2: zero 10..11
        await ov.write("disk", 20 * BLOCK, pseudoRandom(BLOCK, 93)); // record 3: block 20
        await ov.flush();
        const want = await ov.read("disk", 0, disk.length);
        ov.close();
        const good = await Deno.readFile(`${dir}/o.hxo`);
        const { records } = await readSpec(good, baseBytes, pwKey);
        assertEquals(records.map((r) => r.kind), [2, 0, 1, 0]);
        const [, data, zero, last] = records;

        /** `bytes` with record `r`'s checksum made right again, as an attacker can. */
        const resum = async (bytes: Uint8Array, r: Rec, len: number) => {
          const head = bytes.subarray(r.at, r.at + 32);
          bytes.set(await b3(head, bytes.subarray(r.at + 64, r.at + len)), r.at + 32);
          return bytes;
        };
        const dataLen = 64 + 4 * SEALED;
        const variant = async (name: string, bytes: Uint8Array) => {
          await Deno.writeFile(`${dir}/${name}`, bytes);
          return `${dir}/${name}`;
        };
        /** Reading block `b` fails with one line; the blocks not touched read as before. */
        const blockFails = async (path: string, b: number, what: string) => {
          const o = await openOverlay(path, archive, { readOnly: true });
          try {
            const e = await assertRejects(() => o.read("disk", b * BLOCK, 10), HexzError);
            assertEquals((e as HexzError).code, "corrupt", what);
            assertMatch((e as HexzError).message, /authentication failed/);
            assert(!(e as HexzError).message.includes("\n"), what);
            const ok = await o.read("disk", 20 * BLOCK, BLOCK);
            assertBytesEqual(ok, want.subarray(20 * BLOCK, 21 * BLOCK), `${what}: block 20`);
          } finally {
            o.close();
          }
        };

        // One ciphertext byte of block 1, and one tag byte of block 2 (checksums fixed).
        const flipped = good.slice();
        flipped[data.at + 64 + SEALED + 100] ^= 1;
        await blockFails(await variant("ct.hxo", await resum(flipped, data, dataLen)), 1, "ct");
        const tagged = good.slice();
        tagged[data.at + 64 + 2 * SEALED + BLOCK + 3] ^= 0x80;
        await blockFails(await variant("tag.hxo", await resum(tagged, data, dataLen)), 2, "tag");
        // Two sealed blocks swapped (each with its tag): both fail.
        const swapped = good.slice();
        const b0 = good.subarray(data.at + 64, data.at + 64 + SEALED);
        const b1 = good.subarray(data.at + 64 + SEALED, data.at + 64 + 2 * SEALED);
        swapped.set(b1, data.at + 64);
        swapped.set(b0, data.at + 64 + SEALED);
        const sw = await variant("swap.hxo", await resum(swapped, data, dataLen));
        await blockFails(sw, 0, "swap 0");
        await blockFails(sw, 1, "swap 1");
        // A record claiming other blocks (first block changed): its blocks fail.
        const moved = good.slice();
        dv(moved).setBigUint64(last.at + 8, 30n, true);
        const mv = await variant("moved.hxo", await resum(moved, last, 64 + SEALED));
        const o = await openOverlay(mv, archive, { readOnly: true });
        try {
          await assertRejects(() => o.read("disk", 30 * BLOCK, 1), HexzError);
        } finally {
          o.close();
        }
        // A zero record moved to other blocks: refused when opened.
        const zeroMoved = good.slice();
        dv(zeroMoved).setBigUint64(zero.at + 8, 40n, true);
        const zm = await variant("zero.hxo", await resum(zeroMoved, zero, 64 + 16));
        const ze = await assertRejects(() => openOverlay(zm, archive, { readOnly: true }));
        assertMatch((ze as Error).message, /authentication failed/);
        // Two records' order swapped: out of sequence, refused rather than replayed.
        const reordered = cat(
          good.subarray(0, zero.at),
          good.subarray(last.at),
          good.subarray(zero.at, last.at),
        );
        const ro = await variant("order.hxo", reordered);
        await assertRejects(() => openOverlay(ro, archive, { readOnly: true }), HexzError);
        const cli = await hexz(["overlay", ro, "--base", `${dir}/b.hxz`]);
        assertEquals(cli.code, 1, cli.err);
        assertMatch(cli.err, /^hexz: [^\n]+\n$/);
        // The untouched file still reads as written.
        const ok = await openOverlay(`${dir}/o.hxo`, archive, { readOnly: true });
        try {
          assertBytesEqual(await ok.read("disk", 0, disk.length), want, "untouched");
        } finally {
          ok.close();
        }
      } finally {
        archive.close();
      }

      // Without the password, or with a wrong one: one line, nothing read or written.
      await Deno.writeTextFile(`${dir}/wrong`, "not it\n");
      const before = await Deno.readFile(`${dir}/o.hxo`);
      for (
        const [args, env] of [
          [["commit", `${dir}/b.hxz`, `${dir}/o.hxo`, `${dir}/x.hxz`, "--keep-overlay"], {}],
          [["commit", `${dir}/b.hxz`, `${dir}/o.hxo`, `${dir}/x.hxz`, "--keep-overlay"], {
            HEXZ_PASSWORD: "not it",
          }],
          [[
            "overlay",
            `${dir}/o.hxo`,
            "--base",
            `${dir}/b.hxz`,
            "--compact",
            "--password-file",
            `${dir}/wrong`,
          ], {}],
        ] as [string[], Record<string, string>][]
      ) {
        const r = await hexz(args, { env });
        assertEquals(r.code, 1, `${args[0]}: ${r.err}`);
        assertMatch(r.err, /^hexz: [^\n]*(wrong password|archive is encrypted)[^\n]*\n$/);
      }
      assertBytesEqual(await Deno.readFile(`${dir}/o.hxo`), before, "the overlay unchanged");
      await assertRejects(() => Deno.stat(`${dir}/x.hxz`));
      const locked = await open(`${dir}/b.hxz`);
      try {
        const o = await openOverlay(`${dir}/o.hxo`, locked, { readOnly: true });
        try {
          const e = await assertRejects(() => o.read("disk", 0, 10), HexzError);
          assertEquals((e as HexzError).code, "password");
          assertEquals(o.stats().changedBlocks[0], 7, "headers readable without the key");
        } finally {
          o.close();
        }
        const w = await assertRejects(() => openOverlay(`${dir}/o.hxo`, locked), HexzError);
        assertEquals((w as HexzError).code, "password");
      } finally {
        locked.close();
      }
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["b3sum"], {
  name: "encrypted overlay: a torn tail is cut, and the next session seals under a new key",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const disk = pseudoRandom(64 * BLOCK, 95);
      const { bytes: baseBytes, pwKey } = await encryptedBase(dir, disk);
      const archive = await open(`${dir}/b.hxz`, { password: PASSWORD });
      try {
        const path = `${dir}/o.hxo`;
        let ov = await openOverlay(path, archive, { create: true });
        await ov.write("disk", 0, new Uint8Array(BLOCK).fill(1));
        await ov.flush();
        const durable = (await Deno.stat(path)).size;
        await ov.write("disk", BLOCK, new Uint8Array(BLOCK).fill(2));
        await ov.flush();
        ov.close();
        const seen = await readSpec(await Deno.readFile(path), baseBytes, pwKey);
        // A crash tore the second record: half of it is on disk.
        await Deno.truncate(path, durable + 100);
        ov = await openOverlay(path, archive);
        await ov.write("disk", 2 * BLOCK, new Uint8Array(BLOCK).fill(3));
        await ov.flush();
        ov.close();
        const after = await readSpec(await Deno.readFile(path), baseBytes, pwKey);
        assertEquals(after.records.map((r) => [r.kind, r.seq]), [[2, 0], [0, 1], [2, 2], [0, 3]]);
        // The torn record (sequence number 2) was seen before the crash; what follows the cut
        // reuses its number, but for a key record: the data after it is under a new key.
        const fresh = after.records.filter((r) => r.seq >= 2); // written after the cut
        assertNoncesUnique([...seen.records, ...fresh], "across the crash");
      } finally {
        archive.close();
      }
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["b3sum"], {
  name: "encrypted overlay: a version 1 (clear) overlay of an encrypted base is sealed on writing",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const disk = pseudoRandom(16 * BLOCK, 97);
      const { bytes: baseBytes, pwKey } = await encryptedBase(dir, disk);
      // What an older hexz wrote with --plaintext-writes, made here from FORMAT.md (version 1).
      const clear = pseudoRandom(BLOCK, 98);
      const h = new Uint8Array(4096);
      h.set(new TextEncoder().encode("HXOV"));
      dv(h).setUint16(4, 1, true);
      dv(h).setUint32(8, 4096, true);
      h.set(baseBytes.subarray(24, 40), 16);
      h.set(baseBytes.subarray(4064, 4096), 32);
      dv(h).setBigUint64(64, BigInt(disk.length), true);
      h.set(await b3(h.subarray(0, 4064)), 4064);
      const rh = new Uint8Array(64);
      rh.set(new TextEncoder().encode("HXOR"));
      dv(rh).setBigUint64(8, 5n, true);
      dv(rh).setUint32(16, 1, true);
      rh.set(await b3(rh.subarray(0, 32), clear), 32);
      await Deno.writeFile(`${dir}/o.hxo`, cat(h, rh, clear));
      const want = disk.slice();
      want.set(clear, 5 * BLOCK);
      const archive = await open(`${dir}/b.hxz`, { password: PASSWORD });
      try {
        const ro = await openOverlay(`${dir}/o.hxo`, archive, { readOnly: true });
        assert(!ro.encrypted);
        assertBytesEqual(await ro.read("disk", 0, disk.length), want, "version 1 read");
        ro.close();
        const ov = await openOverlay(`${dir}/o.hxo`, archive);
        assert(ov.encrypted, "opened writable, it is sealed first");
        await ov.write("disk", 0, new Uint8Array(10).fill(7));
        want.fill(7, 0, 10);
        await ov.flush();
        ov.close();
      } finally {
        archive.close();
      }
      const file = await Deno.readFile(`${dir}/o.hxo`);
      assert(!contains(file, clear.subarray(0, 64)), "the old clear block is still there");
      const { records } = await readSpec(file, baseBytes, pwKey);
      assertBytesEqual(replay([disk], records)[0], want, "replayed");
    } finally {
      await done();
    }
  },
}));

const SEED = Number(Deno.env.get("HEXZ_TEST_SEED") ?? 20261207);

Deno.test(needs(["b3sum"], {
  name: "encrypted overlay: random writes, zeroes, reopens and compactions read back",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const rng = new Prng(SEED);
      const size = rng.range(8, 80) * BLOCK + rng.int(BLOCK);
      const disk = pseudoRandom(size, 99);
      const { bytes: baseBytes, pwKey } = await encryptedBase(dir, disk);
      const model = disk.slice();
      const archive = await open(`${dir}/b.hxz`, { password: PASSWORD });
      const path = `${dir}/o.hxo`;
      try {
        let ov = await openOverlay(path, archive, { create: true });
        for (let step = 0; step < 60; step++) {
          const what = `seed ${SEED}, step ${step}`;
          const op = rng.int(10);
          const at = rng.int(size);
          const len = Math.min(size - at, rng.range(1, 3 * BLOCK));
          if (op < 5) {
            const data = new Uint8Array(len);
            for (let i = 0; i < len; i++) data[i] = rng.int(256);
            await ov.write("disk", at, data);
            model.set(data, at);
          } else if (op < 7) {
            await ov.writeZeroes("disk", at, len);
            model.fill(0, at, at + len);
          } else if (op < 9) {
            await ov.flush();
            ov.close();
            ov = await openOverlay(path, archive, { readOnly: op === 8 });
            if (op === 8) {
              assertBytesEqual(await ov.read("disk", 0, size), model, `${what}: read-only`);
              ov.close();
              ov = await openOverlay(path, archive);
            }
          } else await ov.compact();
          const from = rng.int(size);
          const n = Math.min(size - from, rng.range(1, 5 * BLOCK));
          assertBytesEqual(await ov.read("disk", from, n), model.subarray(from, from + n), what);
        }
        await ov.flush();
        ov.close();
      } finally {
        archive.close();
      }
      const { records } = await readSpec(await Deno.readFile(path), baseBytes, pwKey);
      assertBytesEqual(replay([disk], records)[0], model, `seed ${SEED}: spec replay`);
      assertNoncesUnique(records, `seed ${SEED}`);
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(["b3sum", "tmpfs"], {
  name: "encrypted overlay: after a failed write, the next record starts a new session",
  async fn() {
    const [dir, done] = await tempDir();
    const [small, unmount] = await smallTmpfs(dir, "256k").catch(async (e) => {
      await done();
      throw e;
    });
    try {
      const disk = pseudoRandom(512 * BLOCK, 96);
      const { bytes: baseBytes, pwKey } = await encryptedBase(dir, disk);
      const archive = await open(`${dir}/b.hxz`, { password: PASSWORD });
      const want = disk.slice();
      try {
        const ov = await openOverlay(`${small}/o.hxo`, archive, { create: true });
        try {
          await ov.write("disk", 0, new Uint8Array(4 * BLOCK).fill(1));
          want.fill(1, 0, 4 * BLOCK);
          await ov.flush();
          // It does not fit: part of it lands in the file, sealed, before the disk is full.
          const e = await assertRejects(() => ov.write("disk", 8 * BLOCK, pseudoRandom(MiB, 9)));
          assertMatch((e as Error).message, /no space left/);
          await ov.write("disk", 100 * BLOCK, new Uint8Array(BLOCK).fill(2));
          want.fill(2, 100 * BLOCK, 101 * BLOCK);
          await ov.flush();
          assertBytesEqual(await ov.read("disk", 0, disk.length), want, "read back");
        } finally {
          ov.close();
        }
        // Reopened, the failed write's leftover bytes after the last record are a torn tail.
        const again = await openOverlay(`${small}/o.hxo`, archive, { readOnly: true });
        try {
          assertBytesEqual(await again.read("disk", 0, disk.length), want, "reopened");
        } finally {
          again.close();
        }
      } finally {
        archive.close();
      }
      const file = await Deno.readFile(`${small}/o.hxo`);
      const { records } = await readSpec(file.subarray(0, u64Len(file)), baseBytes, pwKey);
      // The failed record's sequence number 2 went to a new session's key record.
      assertEquals(records.map((r) => [r.kind, r.seq]), [[2, 0], [0, 1], [2, 2], [0, 3]]);
      assertBytesEqual(replay([disk], records)[0], want, "replayed");
    } finally {
      await unmount();
      await done();
    }
  },
}));

/** Where the records of an overlay end: the failed write's bytes may lie after them. */
function u64Len(file: Uint8Array): number {
  let at = 4096;
  while (at + 64 <= file.length && ascii(file.subarray(at, at + 4)) === "HXOR") {
    const kind = file[at + 5], count = u32(file, at + 16);
    const len = 64 + (kind === 0 ? SEALED * count : kind === 1 ? 16 : 32);
    if (at + len > file.length) break;
    at += len;
  }
  return at;
}

Deno.test("encrypted overlay: a read overtaken by a write of its blocks returns what it planned", async () => {
  const [dir, done] = await tempDir();
  try {
    const disk = pseudoRandom(1024 * BLOCK, 97);
    await encryptedBase(dir, disk);
    const archive = await open(`${dir}/b.hxz`, { password: PASSWORD });
    try {
      const ov = await openOverlay(`${dir}/o.hxo`, archive, { create: true });
      try {
        for (let i = 0; i < 8; i++) {
          const old = new Uint8Array(1024 * BLOCK).fill(i);
          await ov.write("disk", 0, old);
          // Issued while nothing is queued, the long read runs at once; the short write lands
          // while it waits for the file, and gives its block a new record (key and nonce).
          const read = ov.read("disk", 0, 1024 * BLOCK);
          const write = ov.write("disk", 1023 * BLOCK, new Uint8Array(BLOCK).fill(i + 100));
          const [got] = await Promise.all([read, write]);
          assertBytesEqual(got, old, `round ${i}`);
        }
      } finally {
        await ov.close();
      }
    } finally {
      archive.close();
    }
  } finally {
    await done();
  }
});
