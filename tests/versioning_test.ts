/**
 * docs/FORMAT.md, "Versioning": which reserved fields readers refuse when they are not zero,
 * and which they do not read (the space a minor version can use). Each field is set to a
 * non-zero value in a real archive (and overlay) and every checksum above it is recomputed
 * here, with hash-wasm's BLAKE3, so only the rule itself can refuse it.
 */
import { check, HexzError, open, openOverlay, pack } from "../mod.ts";
import { assertEquals, assertRejects } from "./_assert.ts";
import { b3, rehash, u32, u64 } from "./_rehash.ts";
import { assertBytesEqual } from "./_archive.ts";
import { pseudoRandom, tempDir } from "./_tools.ts";

interface Place {
  what: string;
  /** Byte offset in the file. */
  at: (f: Uint8Array) => number;
}

const masterAt = (f: Uint8Array) => u64(f, 80);
const pageAt = (f: Uint8Array) => u64(f, masterAt(f) + 16 + 24);
const header = (o: number): Place => ({ what: `header byte ${o}`, at: () => o });
const masterByte = (o: number): Place => ({ what: `master byte ${o}`, at: (f) => masterAt(f) + o });
const recordByte = (o: number): Place => ({
  what: `master record byte ${o}`,
  at: (f) => masterAt(f) + 16 + o,
});
const pageByte = (o: number): Place => ({ what: `page byte ${o}`, at: (f) => pageAt(f) + o });
const entryByte = (o: number): Place => ({
  what: `entry byte ${o}`,
  at: (f) => pageAt(f) + 32 + o,
});

async function sample(dir: string): Promise<{ path: string; data: Uint8Array }> {
  const data = pseudoRandom(20_000, 91);
  await Deno.writeFile(`${dir}/d`, data);
  await pack({ output: `${dir}/a.hxz`, disk: `${dir}/d`, blockSize: 4096, compression: "none" });
  return { path: `${dir}/a.hxz`, data };
}

Deno.test("versioning: reserved fields FORMAT.md says must be zero are refused when set", async () => {
  const [dir, done] = await tempDir();
  try {
    const { path } = await sample(dir);
    const good = await Deno.readFile(path);
    const places = [
      header(2322),
      header(3000),
      header(4063),
      header(1008), // key derivation of an unencrypted archive
      header(1100),
      header(1263),
      entryByte(20),
      entryByte(23),
      // "Integers written u64 must be below 2^53": the top byte of a creation time that no
      // other rule bounds.
      { what: "created at >= 2^53", at: () => 47 },
    ];
    for (const p of places) {
      const f = good.slice();
      f[p.at(f)] = 0x5a;
      await Deno.writeFile(`${dir}/bad.hxz`, await rehash(f));
      await assertRejects(
        async () => {
          const a = await open(`${dir}/bad.hxz`);
          try {
            await check(a);
          } finally {
            a.close();
          }
        },
        HexzError,
        undefined,
      ).catch((e) => {
        throw new Error(`${p.what}: ${e.message}`);
      });
    }
  } finally {
    await done();
  }
});

Deno.test("versioning: reserved fields FORMAT.md says are not read are ignored", async () => {
  const [dir, done] = await tempDir();
  try {
    const { path, data } = await sample(dir);
    const good = await Deno.readFile(path);
    const places = [
      header(16),
      header(23),
      header(59),
      header(76),
      header(79),
      header(400),
      header(447),
      masterByte(6),
      masterByte(7),
      masterByte(12),
      masterByte(15),
      recordByte(1),
      recordByte(3),
      recordByte(36),
      recordByte(39),
      pageByte(7),
      pageByte(12),
      pageByte(15),
    ];
    for (const p of places) {
      const f = good.slice();
      f[p.at(f)] = 0x5a;
      await Deno.writeFile(`${dir}/odd.hxz`, await rehash(f));
      try {
        const a = await open(`${dir}/odd.hxz`);
        try {
          await check(a);
          assertBytesEqual(await a.read("disk", 0, data.length), data, p.what);
        } finally {
          a.close();
        }
      } catch (e) {
        throw new Error(`${p.what} was read: ${(e as Error).message}`);
      }
    }
  } finally {
    await done();
  }
});

Deno.test("versioning: overlay header bytes 80..4064 must be zero; its other reserved bytes are not read", async () => {
  const [dir, done, keep] = await tempDir();
  try {
    const { path, data } = await sample(dir);
    const base = keep(await open(path));
    const ov = await openOverlay(`${dir}/o.hxo`, base, { create: true });
    await ov.write("disk", 100, new Uint8Array([1, 2, 3]));
    await ov.flush();
    ov.close();
    const good = await Deno.readFile(`${dir}/o.hxo`);
    const want = data.slice();
    want.set([1, 2, 3], 100);
    const variant = async (at: number) => {
      const f = good.slice();
      f[at] = 0x5a;
      if (at < 4096) f.set(await b3(f.subarray(0, 4064)), 4064);
      else {
        // A record: its checksum covers bytes 0..32 and the payload.
        const r = f.subarray(4096);
        const count = u32(r, 16);
        r.set(
          await b3(new Uint8Array([...r.subarray(0, 32), ...r.subarray(64, 64 + 4096 * count)])),
          32,
        );
      }
      await Deno.writeFile(`${dir}/v.hxo`, f);
      return `${dir}/v.hxo`;
    };
    for (const at of [80, 1000, 4063]) {
      await assertRejects(
        async () => openOverlay(await variant(at), base, { readOnly: true }),
        HexzError,
      );
    }
    for (const at of [6, 7, 12, 15, 4096 + 6, 4096 + 7, 4096 + 20, 4096 + 23]) {
      const o = await openOverlay(await variant(at), base, { readOnly: true }).catch((e) => {
        throw new Error(`overlay byte ${at} was read: ${e.message}`);
      });
      try {
        assertEquals(o.stats().records, 1, `overlay byte ${at}`);
        assertBytesEqual(await o.read("disk", 0, data.length), want, `overlay byte ${at}`);
      } finally {
        o.close();
      }
    }
  } finally {
    await done();
  }
});
