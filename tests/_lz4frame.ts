/**
 * The LZ4 frame format around raw blocks (lz4_Frame_format.md), for tests that hand our blocks
 * to the independent `lz4` tool and read its blocks back. Includes XXH32 for the header
 * checksum the frame requires.
 */
const P1 = 2654435761, P2 = 2246822519, P3 = 3266489917, P4 = 668265263, P5 = 374761393;
const rotl = (x: number, r: number) => ((x << r) | (x >>> (32 - r))) >>> 0;

/** XXH32 with seed 0 of a short input (< 16 bytes, all the frame header needs). */
export function xxh32Short(b: Uint8Array): number {
  if (b.length >= 16) throw new RangeError("xxh32Short handles inputs under 16 bytes");
  let h = (P5 + b.length) >>> 0;
  let i = 0;
  for (; i + 4 <= b.length; i += 4) {
    const w = (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
    h = Math.imul(rotl((h + Math.imul(w, P3)) >>> 0, 17), P4) >>> 0;
  }
  for (; i < b.length; i++) h = Math.imul(rotl((h + Math.imul(b[i], P5)) >>> 0, 11), P1) >>> 0;
  h = Math.imul(h ^ (h >>> 15), P2) >>> 0;
  h = Math.imul(h ^ (h >>> 13), P3) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** A frame of independent blocks of at most 64 KiB, no checksums but the header's. */
export function frame(blocks: { data: Uint8Array; compressed: boolean }[]): Uint8Array {
  const parts: number[] = [0x04, 0x22, 0x4d, 0x18];
  const desc = new Uint8Array([0x60, 0x40]);
  parts.push(...desc, (xxh32Short(desc) >>> 8) & 0xff);
  for (const b of blocks) {
    const n = b.data.length | (b.compressed ? 0 : 0x80000000);
    parts.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff, ...b.data);
  }
  parts.push(0, 0, 0, 0);
  return Uint8Array.from(parts);
}

/** The blocks of a frame written by `lz4 -B4 --no-frame-crc` (or with a content checksum). */
export function unframe(f: Uint8Array): { data: Uint8Array; compressed: boolean }[] {
  const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
  if (dv.getUint32(0, true) !== 0x184d2204) throw new Error("not an LZ4 frame");
  const flg = f[4];
  let p = 7 + ((flg & 0x08) ? 8 : 0) + ((flg & 0x01) ? 4 : 0);
  const blockSum = (flg & 0x10) !== 0;
  const out: { data: Uint8Array; compressed: boolean }[] = [];
  for (;;) {
    const n = dv.getUint32(p, true);
    p += 4;
    if (n === 0) break;
    const len = n & 0x7fffffff;
    out.push({ data: f.subarray(p, p + len), compressed: (n & 0x80000000) === 0 });
    p += len + (blockSum ? 4 : 0);
  }
  return out;
}

/**
 * One LZ4 block decoded by the `lz4` command-line tool (not our decoder), handed to it inside a
 * frame. Throws if the tool refuses it.
 */
export async function lz4Tool(block: Uint8Array): Promise<Uint8Array> {
  const lz = new Deno.Command("lz4", { args: ["-d", "-c"], stdin: "piped", stdout: "piped" })
    .spawn();
  const w = lz.stdin.getWriter();
  await w.write(frame([{ data: block, compressed: true }]));
  await w.close();
  const out = await lz.output();
  if (!out.success) throw new Error("the lz4 tool refused the block");
  return out.stdout;
}
