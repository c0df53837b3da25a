/**
 * The checksums of the HDF5 format: Jenkins' lookup3 `hashlittle` (initial value 0), which
 * guards superblocks of version 2 and up, version 2 object headers and the chunk indexes of
 * the newer layouts; and the Fletcher-32 of the fletcher32 filter (H5Zfletcher32.c).
 *
 * @module
 */

const rot = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

/** lookup3 hashlittle of `k` with initial value `init` (HDF5's H5_checksum_lookup3). */
export function lookup3(k: Uint8Array, init = 0): number {
  let length = k.length;
  let a = (0xdeadbeef + length + init) >>> 0, b = a, c = a;
  let i = 0;
  const w = (j: number) => k[j] | (k[j + 1] << 8) | (k[j + 2] << 16) | (k[j + 3] << 24);
  while (length > 12) {
    a = (a + w(i)) >>> 0;
    b = (b + w(i + 4)) >>> 0;
    c = (c + w(i + 8)) >>> 0;
    a = (a - c) >>> 0, a ^= rot(c, 4), c = (c + b) >>> 0;
    b = (b - a) >>> 0, b ^= rot(a, 6), a = (a + c) >>> 0;
    c = (c - b) >>> 0, c ^= rot(b, 8), b = (b + a) >>> 0;
    a = (a - c) >>> 0, a ^= rot(c, 16), c = (c + b) >>> 0;
    b = (b - a) >>> 0, b ^= rot(a, 19), a = (a + c) >>> 0;
    c = (c - b) >>> 0, c ^= rot(b, 4), b = (b + a) >>> 0;
    length -= 12;
    i += 12;
  }
  if (length === 0) return c >>> 0;
  // The tail: bytes 0-3 into a, 4-7 into b, 8-11 into c, little-endian.
  const add = [0, 0, 0];
  for (let j = 0; j < length; j++) add[j >> 2] += k[i + j] * 2 ** (8 * (j & 3));
  a = (a + add[0]) >>> 0;
  b = (b + add[1]) >>> 0;
  c = (c + add[2]) >>> 0;
  c ^= b, c = (c - rot(b, 14)) >>> 0;
  a ^= c, a = (a - rot(c, 11)) >>> 0;
  b ^= a, b = (b - rot(a, 25)) >>> 0;
  c ^= b, c = (c - rot(b, 16)) >>> 0;
  a ^= c, a = (a - rot(c, 4)) >>> 0;
  b ^= a, b = (b - rot(a, 14)) >>> 0;
  c ^= b, c = (c - rot(b, 24)) >>> 0;
  return c >>> 0;
}

/** HDF5's Fletcher-32: sums of big-endian 16-bit words (an odd last byte is the high byte). */
export function fletcher32(data: Uint8Array): number {
  let sum1 = 0, sum2 = 0;
  let len = data.length >>> 1;
  let i = 0;
  while (len) {
    let t = len > 360 ? 360 : len;
    len -= t;
    do {
      sum1 += (data[i] << 8) | data[i + 1];
      i += 2;
      sum2 += sum1;
    } while (--t);
    sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  }
  if (data.length & 1) {
    sum1 += data[i] << 8;
    sum2 += sum1;
    sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  }
  sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
  sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  return ((sum2 << 16) | sum1) >>> 0;
}
