/**
 * Device numbers as Linux (glibc's `makedev`, `major`, `minor`) packs them into a `dev_t`: the
 * major's low 12 bits at 8..20 and its high bits from 44, the minor's low 8 bits at 0..8 and its
 * high bits from 20. `build` splits `Deno.FileInfo.rdev` with `splitDev`; `extract` packs the
 * stored major and minor with `makedev` for mknod(2).
 *
 * @module
 */

/** glibc's makedev(major, minor), both 32-bit. */
export function makedev(major: number, minor: number): bigint {
  const M = BigInt(major), m = BigInt(minor);
  return ((M & 0xfffff000n) << 32n) | ((M & 0xfffn) << 8n) | ((m & 0xffffff00n) << 12n) |
    (m & 0xffn);
}

/** glibc's major() and minor() of a device number. */
export function splitDev(rdev: number | bigint): { major: number; minor: number } {
  const d = BigInt(rdev);
  return {
    major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & 0xfffff000n)),
    minor: Number((d & 0xffn) | ((d >> 12n) & 0xffffff00n)),
  };
}
