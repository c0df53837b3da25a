/**
 * All-zero block detection, four bytes at a time where the view is aligned.
 *
 * @module
 */
export function isZeroBlock(b: Uint8Array): boolean {
  let i = 0;
  const n = b.length;
  const misalign = (4 - (b.byteOffset & 3)) & 3;
  for (; i < misalign && i < n; i++) if (b[i] !== 0) return false;
  const words = (n - i) >>> 2;
  if (words > 0) {
    const w = new Uint32Array(b.buffer, b.byteOffset + i, words);
    // OR-reduce runs of words: one branch per 64 bytes.
    let k = 0;
    for (; k + 16 <= words; k += 16) {
      if (
        (w[k] | w[k + 1] | w[k + 2] | w[k + 3] | w[k + 4] | w[k + 5] | w[k + 6] | w[k + 7] |
          w[k + 8] | w[k + 9] | w[k + 10] | w[k + 11] | w[k + 12] | w[k + 13] | w[k + 14] |
          w[k + 15]) !== 0
      ) return false;
    }
    for (; k < words; k++) if (w[k] !== 0) return false;
    i += words * 4;
  }
  for (; i < n; i++) if (b[i] !== 0) return false;
  return true;
}
