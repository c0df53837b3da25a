/**
 * The gear table and masks of hexz's FastCDC (docs/CHUNKING.md). They decide where chunks cut,
 * so they are part of the format: changing them breaks dedup against existing archives.
 *
 * @module
 */

/** splitmix64, one step (Steele, Lea, Flood 2014), in BigInt: used once, at load time. */
function splitmix64(state: bigint): [bigint, bigint] {
  const M = (1n << 64n) - 1n;
  const s = (state + 0x9e3779b97f4a7c15n) & M;
  let z = s;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
  return [s, z ^ (z >> 31n)];
}

/** GEAR[b] = high 32 bits of the (b+1)-th splitmix64 output from seed "hexzgear" (stored as
 * signed 32-bit integers; only the bits matter). */
export const GEAR: Int32Array = (() => {
  const t = new Int32Array(256);
  let state = 0x6865787a67656172n; // ASCII "hexzgear"
  for (let i = 0; i < 256; i++) {
    const [s, z] = splitmix64(state);
    state = s;
    t[i] = Number(z >> 32n) | 0;
  }
  return t;
})();

/** A 32-bit mask of `k` one bits spread evenly from bit 31 down: bit 31 - floor(j*32/k). */
export function spreadMask(k: number): number {
  let m = 0;
  for (let j = 0; j < k; j++) m |= 1 << (31 - Math.floor((j * 32) / k));
  return m >>> 0;
}

/**
 * The two masks of normalized chunking (level 2) for an average chunk of 2^bits bytes, as
 * signed 32-bit integers (V8 keeps those unboxed in the hot loop).
 */
export function cdcMasks(avg: number): { small: number; large: number } {
  const bits = Math.round(Math.log2(avg));
  return { small: spreadMask(bits + 2) | 0, large: spreadMask(bits - 2) | 0 };
}
