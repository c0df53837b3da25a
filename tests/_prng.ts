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
