/**
 * Exact reads from a stream of chunks (a decompressor's output): the tar reader asks for
 * 512-byte headers and for file contents a piece at a time, whatever sizes the chunks come in.
 *
 * @module
 */

export interface ByteReader {
  /** Fills as much of `into` as the stream has, up to its length; 0 only at the end. */
  read(into: Uint8Array): Promise<number>;
  /** Exactly `n` bytes, or fewer only if the stream ended (the caller decides what that is). */
  readExact(n: number): Promise<Uint8Array>;
  /** Skips `n` bytes; returns how many were there. */
  skip(n: number): Promise<number>;
  /** Bytes consumed so far. */
  readonly position: number;
}

export function byteReader(chunks: AsyncIterable<Uint8Array>): ByteReader {
  const it = chunks[Symbol.asyncIterator]();
  let cur: Uint8Array = new Uint8Array(0);
  let at = 0;
  let done = false;
  let position = 0;
  const more = async (): Promise<boolean> => {
    while (at >= cur.length) {
      if (done) return false;
      const r = await it.next();
      if (r.done) {
        done = true;
        return false;
      }
      cur = r.value;
      at = 0;
    }
    return true;
  };
  const r: ByteReader = {
    async read(into) {
      if (into.length === 0 || !(await more())) return 0;
      const n = Math.min(into.length, cur.length - at);
      into.set(cur.subarray(at, at + n));
      at += n;
      position += n;
      return n;
    },
    async readExact(n) {
      // The common case: the whole piece lies in the current chunk, no copy.
      if ((await more()) && cur.length - at >= n) {
        const out = cur.subarray(at, at + n);
        at += n;
        position += n;
        return out;
      }
      const out = new Uint8Array(n);
      let got = 0;
      while (got < n) {
        const k = await r.read(out.subarray(got));
        if (k === 0) break;
        got += k;
      }
      return out.subarray(0, got);
    },
    async skip(n) {
      let left = n;
      while (left > 0 && (await more())) {
        const k = Math.min(left, cur.length - at);
        at += k;
        position += k;
        left -= k;
      }
      return n - left;
    },
    get position() {
      return position;
    },
  };
  return r;
}
