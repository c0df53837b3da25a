/**
 * Recomputing an unencrypted archive's checksums after a test changed one of its bytes, with
 * hash-wasm's BLAKE3 (not ours), so that only the rule under test can refuse the change.
 */
import { blake3 } from "hash-wasm";

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.length);
export const u32 = (b: Uint8Array, o: number) => dv(b).getUint32(o, true);
export const u64 = (b: Uint8Array, o: number) => Number(dv(b).getBigUint64(o, true));
const unhex = (s: string) => Uint8Array.from(s.match(/../g)!.map((h) => parseInt(h, 16)));
/** BLAKE3-256 by hash-wasm, as bytes. */
export const b3 = async (b: Uint8Array) => unhex(await blake3(b));

/** Recomputes, bottom up, every page checksum, master record hash, the master checksum, the
 * header's master hash and the header checksum of an unencrypted archive, in place. */
export async function rehash(f: Uint8Array): Promise<Uint8Array> {
  const masterAt = u64(f, 80), masterLen = u64(f, 88);
  const master = f.subarray(masterAt, masterAt + masterLen);
  for (let i = 0; i < u32(master, 8); i++) {
    const r = master.subarray(16 + 72 * i, 16 + 72 * (i + 1));
    const page = f.subarray(u64(r, 24), u64(r, 24) + u32(r, 32));
    page.set(await b3(page.subarray(0, page.length - 32)), page.length - 32);
    r.set(page.subarray(page.length - 32), 40);
  }
  master.set(await b3(master.subarray(0, masterLen - 32)), masterLen - 32);
  f.set(master.subarray(masterLen - 32), 96);
  f.set(await b3(f.subarray(0, 4064)), 4064);
  return f;
}
