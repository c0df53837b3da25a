/**
 * A seeded pseudo-random generator for property tests (mulberry32: small, fast, and good
 * enough to pick sizes, offsets and contents). The same seed gives the same sequence, so a
 * failing case is reproduced by its seed; tests print the seed in their assertion messages.
 */
export class Prng {
  #s: number;

  constructor(readonly seed: number) {
    this.#s = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.next() / 2 ** 32) * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  bool(): boolean {
    return (this.next() & 1) === 1;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    const words = new Uint32Array(out.buffer, 0, n >>> 2);
    for (let i = 0; i < words.length; i++) words[i] = this.next();
    for (let i = words.length * 4; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
}

/** Random, zero-filled, short-period and text-like regions in random order and sizes. */
export function mixedBytes(rng: Prng, n: number): Uint8Array {
  const d = new Uint8Array(n);
  for (let at = 0; at < n;) {
    const len = Math.min(n - at, 1 + rng.int(rng.bool() ? 300 : 200_000));
    const kind = rng.int(4);
    if (kind === 0) d.set(rng.bytes(len), at);
    else if (kind === 1) d.fill(0, at, at + len);
    else if (kind === 2) {
      const period = 1 + rng.int(16);
      for (let i = 0; i < len; i++) d[at + i] = (i % period) * 17;
    } else {
      const words = ["hexz ", "block ", "chunk ", "gear ", "\n", "0123 "];
      for (let i = 0; i < len;) {
        for (const c of words[rng.int(words.length)]) if (i < len) d[at + i++] = c.charCodeAt(0);
      }
    }
    at += len;
  }
  return d;
}
