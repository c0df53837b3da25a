/**
 * The overlay file (.hxo) checked against docs/FORMAT.md, "Overlay", by a reader written here
 * from that section alone (BLAKE3 from hash-wasm, not ours): an overlay written by the NBD
 * server (what `hexz serve --nbd --rw` runs) under qemu-io, plus memory writes through the
 * library, must parse field by field, replay to exactly what was written, and agree with
 * `hexz overlay --json --blocks`. Torn and damaged tails behave as the section says.
 */
import { blake3 as wasmBlake3 } from "hash-wasm";
import { open, pack } from "../mod.ts";
import { openOverlay } from "../core/overlay/overlay.ts";
import { serveNbd } from "../serve/nbd.ts";
import { HexzError } from "../core/errors.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { assertBytesEqual } from "./_archive.ts";
import { hexz } from "./_cli.ts";
import { needs, pseudoRandom, tempDir } from "./_tools.ts";

const BLOCK = 4096;
const MiB = 1 << 20;

async function b3(...parts: Uint8Array[]): Promise<Uint8Array> {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) all.set(p, (at += p.length) - p.length);
  const hex = await wasmBlake3(all);
  return Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
}

const u16 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset).getUint16(o, true);
const u32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset).getUint32(o, true);
function u64(b: Uint8Array, o: number): number {
  const v = new DataView(b.buffer, b.byteOffset).getBigUint64(o, true);
  assert(v < 2n ** 53n, `u64 at ${o} too large`);
  return Number(v);
}
const ascii = (b: Uint8Array) => new TextDecoder().decode(b);

interface SpecRecord {
  at: number;
  stream: number;
  kind: number;
  first: number;
  count: number;
  seq: number;
  payload: Uint8Array;
}

/** Reads an overlay as FORMAT.md describes it; every documented field is asserted. */
async function readSpec(file: Uint8Array, base: Uint8Array) {
  assert(file.length >= 4096, "header");
  const h = file.subarray(0, 4096);
  assertEquals(ascii(h.subarray(0, 4)), "HXOV");
  assertEquals(u16(h, 4), 1, "version");
  assertEquals(u32(h, 8), 4096, "block size");
  // The base's identity, as the .hxz header has it: UUID at 24, root hash at 4064.
  assertEquals(h.subarray(16, 32), base.subarray(24, 40), "base UUID");
  assertEquals(h.subarray(32, 64), base.subarray(4064, 4096), "base root hash");
  // Stream sizes: the logical size is the first u64 of each descriptor (header 128 and 192).
  const sizes = [u64(h, 64), u64(h, 72)];
  assertEquals(sizes, [u64(base, 128), u64(base, 192)], "stream sizes");
  assert(h.subarray(80, 4064).every((b) => b === 0), "reserved 80..4064 zero");
  assertEquals(h.subarray(4064, 4096), await b3(h.subarray(0, 4064)), "header checksum");

  const records: SpecRecord[] = [];
  let at = 4096;
  while (at < file.length) {
    const r = file.subarray(at);
    assert(r.length >= 64, `record at ${at}: torn header`);
    assertEquals(ascii(r.subarray(0, 4)), "HXOR", `record at ${at}: magic`);
    const stream = r[4], kind = r[5];
    assert(stream === 0 || stream === 1, `record at ${at}: stream ${stream}`);
    assert(kind === 0 || kind === 1, `record at ${at}: kind ${kind}`);
    const first = u64(r, 8), count = u32(r, 16), seq = u64(r, 24);
    assert(count >= 1 && count <= 1024, `record at ${at}: count ${count}`);
    assertEquals(seq, records.length, `record at ${at}: sequence number`);
    const blocksInStream = Math.ceil(sizes[stream] / BLOCK);
    assert(first + count <= blocksInStream, `record at ${at}: past the stream`);
    const len = kind === 0 ? 64 + BLOCK * count : 64;
    assert(r.length >= len, `record at ${at}: torn payload`);
    const payload = r.subarray(64, len);
    assertEquals(r.subarray(32, 64), await b3(r.subarray(0, 32), payload), `record at ${at} sum`);
    records.push({ at, stream, kind, first, count, seq, payload });
    at += len;
  }
  assertEquals(at, file.length, "the file ends with its last record");
  return { sizes, records };
}

/** Replays records over the base streams: the last record covering a block wins. */
function replay(streams: Uint8Array[], records: SpecRecord[]) {
  const out = streams.map((s) => s.slice());
  const last = [new Map<number, number>(), new Map<number, number>()];
  for (const r of records) {
    for (let i = 0; i < r.count; i++) {
      const b = r.first + i;
      const s = out[r.stream];
      const start = b * BLOCK, end = Math.min(s.length, start + BLOCK);
      if (r.kind === 0) s.set(r.payload.subarray(i * BLOCK, i * BLOCK + end - start), start);
      else s.fill(0, start, end);
      last[r.stream].set(b, r.kind);
    }
  }
  return { out, last };
}

Deno.test(needs(["qemu-io"], {
  name: "overlay: a file written through NBD and the library is what FORMAT.md describes",
  async fn() {
    const [dir, done] = await tempDir();
    try {
      const disk = pseudoRandom(5 * MiB + 1000, 61); // a partial last 4 KiB block
      const mem = pseudoRandom(50_000, 62);
      await Deno.writeFile(`${dir}/d.img`, disk);
      await Deno.writeFile(`${dir}/m.img`, mem);
      await pack({ output: `${dir}/b.hxz`, disk: `${dir}/d.img`, memory: `${dir}/m.img` });
      const baseBytes = await Deno.readFile(`${dir}/b.hxz`);
      const ovPath = `${dir}/o.hxo`;
      const want = [disk.slice(), mem.slice()];

      const archive = await open(`${dir}/b.hxz`);
      try {
        const sock = `${dir}/s.sock`;
        const server = await serveNbd(archive, { socket: sock, readOnly: false, overlay: ovPath });
        try {
          const writes: [string, (d: Uint8Array) => void][] = [
            ["write -P 0xab 4096 8192", (d) => d.fill(0xab, 4096, 4096 + 8192)],
            ["write -P 0xcd 5000 3", (d) => d.fill(0xcd, 5000, 5003)], // inside one block
            ["write -z 65536 20000", (d) => d.fill(0, 65536, 65536 + 20000)],
            // More than 1024 blocks at once: more than one record.
            ["write -P 0x11 512k 4600k", (d) => d.fill(0x11, 512 * 1024, (512 + 4600) * 1024)],
            ["write -P 0x22 4096 4096", (d) => d.fill(0x22, 4096, 8192)], // later record wins
            ["write -P 0xee 5243368 512", (d) => d.fill(0xee, 5243368, 5243880)], // last block
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
        // Memory: through the library, as a read-write mount writes it.
        const ov = await openOverlay(ovPath, archive);
        try {
          await ov.write("memory", 100, new Uint8Array(5000).fill(0x33));
          want[1].fill(0x33, 100, 5100);
          await ov.writeZeroes("memory", 45_000, 5000); // to the end of the stream
          want[1].fill(0, 45_000);
          await ov.flush();
        } finally {
          ov.close();
        }
      } finally {
        archive.close();
      }

      const file = await Deno.readFile(ovPath);
      const { sizes, records } = await readSpec(file, baseBytes);
      assertEquals(sizes, [disk.length, mem.length]);
      assert(records.some((r) => r.kind === 1), "a zero record");
      assert(records.some((r) => r.count === 1024), "a record of the largest size");
      assert(records.some((r) => r.stream === 1), "a memory record");
      const { out, last } = replay([disk, mem], records);
      assertBytesEqual(out[0], want[0], "disk replayed by the spec reader");
      assertBytesEqual(out[1], want[1], "memory replayed by the spec reader");

      // `hexz overlay --json --blocks` counts what the records say.
      const r = await hexz(["overlay", ovPath, "--base", `${dir}/b.hxz`, "--json", "--blocks"]);
      assertEquals(r.code, 0, r.err);
      const report = JSON.parse(r.out);
      assertEquals(report.records, records.length);
      assertEquals(report.encrypted, false);
      assertEquals(report.fileSize, file.length);
      assertMatch(report.base, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assertEquals(
        report.base.replaceAll("-", ""),
        [...baseBytes.subarray(24, 40)].map((b) => b.toString(16).padStart(2, "0")).join(""),
      );
      for (const id of [0, 1]) {
        const blocks = [...last[id].keys()].sort((a, b) => a - b);
        const s = report.streams[id];
        assertEquals(s.name, ["disk", "memory"][id]);
        assertEquals(s.changedBlocks, blocks.length);
        assertEquals(s.changedBytes, blocks.length * BLOCK);
        assertEquals(s.zeroBlocks, [...last[id].values()].filter((k) => k === 1).length);
        const runs: [number, number][] = [];
        for (const b of blocks) {
          const l = runs[runs.length - 1];
          if (l && l[1] === b - 1) l[1] = b;
          else runs.push([b, b]);
        }
        assertEquals(s.ranges, runs);
      }
    } finally {
      await done();
    }
  },
}));

Deno.test("overlay: a torn last record is dropped; damage before the end is refused", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const disk = pseudoRandom(64 * BLOCK, 71);
    await Deno.writeFile(`${dir}/d.img`, disk);
    await pack({ output: `${dir}/b.hxz`, disk: `${dir}/d.img` });
    const baseBytes = await Deno.readFile(`${dir}/b.hxz`);
    const archive = await open(`${dir}/b.hxz`);
    try {
      const ov = keep(await openOverlay(`${dir}/o.hxo`, archive, { create: true }));
      await ov.write("disk", 0, new Uint8Array(2 * BLOCK).fill(1));
      await ov.write("disk", 10 * BLOCK, new Uint8Array(BLOCK).fill(2));
      await ov.flush();
      ov.close();
      const good = await Deno.readFile(`${dir}/o.hxo`);
      const { records } = await readSpec(good, baseBytes);
      assertEquals(records.length, 2);
      const expected = replay([disk], records).out[0];

      const variant = async (name: string, bytes: Uint8Array) => {
        await Deno.writeFile(`${dir}/${name}`, bytes);
        return `${dir}/${name}`;
      };
      const readsAsGood = async (path: string, what: string) => {
        const o = await openOverlay(path, archive, { readOnly: true });
        try {
          assertEquals(o.stats().records, 2, what);
          assertBytesEqual(await o.read("disk", 0, disk.length), expected, what);
        } finally {
          o.close();
        }
      };
      const second = good.subarray(records[1].at);
      // A torn tail: part of a third record (a copy of the second), of every kind of cut.
      for (const cut of [1, 63, 64, 65, 64 + BLOCK - 1]) {
        await readsAsGood(
          await variant(`torn${cut}.hxo`, concat(good, second.subarray(0, cut))),
          `cut ${cut}`,
        );
      }
      // A writable open cuts the torn tail, so the next record follows intact ones.
      const torn = await variant("torn.hxo", concat(good, second.subarray(0, 100)));
      const w = keep(await openOverlay(torn, archive));
      await w.write("disk", 20 * BLOCK, new Uint8Array(BLOCK).fill(3));
      await w.flush();
      w.close();
      const after = await readSpec(await Deno.readFile(torn), baseBytes);
      assertEquals(after.records.map((r) => [r.first, r.seq]), [[0, 0], [10, 1], [20, 2]]);

      // A damaged record that ends before the end of the file: refused, not replayed in part.
      const flipped = good.slice();
      flipped[records[0].at + 64 + 5] ^= 1;
      const damaged = await variant("damaged.hxo", flipped);
      await assertRejects(() => openOverlay(damaged, archive, { readOnly: true }), HexzError);
      const r = await hexz(["overlay", damaged, "--base", `${dir}/b.hxz`]);
      assertEquals(r.code, 1, r.err);
      assertMatch(r.err, /^hexz: [^\n]+\n$/);
      // More bytes after the last good record than the longest record takes: refused.
      const long = await variant("long.hxo", concat(good, new Uint8Array(64 + BLOCK * 1024 + 1)));
      await assertRejects(() => openOverlay(long, archive, { readOnly: true }), HexzError);
      // ... while exactly that many is still a possible torn record.
      await readsAsGood(
        await variant("max.hxo", concat(good, new Uint8Array(64 + BLOCK * 1024))),
        "max tail",
      );
      // A header that is not an overlay's, or of another base: refused.
      const badHeader = good.slice();
      badHeader[100] = 1; // reserved, and the checksum no longer matches
      await assertRejects(
        async () => openOverlay(await variant("h.hxo", badHeader), archive, { readOnly: true }),
        HexzError,
      );
    } finally {
      archive.close();
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
