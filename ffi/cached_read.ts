/**
 * Reads that never wait for the disk: preadv2(2) with RWF_NOWAIT returns what the page cache
 * holds and fails with EAGAIN instead of blocking (Linux 4.14 and later, on ext4, xfs, btrfs
 * and others). Servers give it to their file sources (core/io/source.ts), which then wait for
 * the rest on Deno's I/O threads, so a read from a slow disk never holds up the event loop
 * while reads from the page cache keep their synchronous speed.
 *
 * @module
 */
import type { CachedRead } from "../core/io/source.ts";
import { libcIfAllowed, RWF_NOWAIT } from "./libc.ts";

/**
 * The page-cache-only read, or null where there is none: not Linux, no --allow-ffi (never
 * prompted for), or a C library without preadv2. A file system that does not support
 * RWF_NOWAIT makes every call return 0, and every read then waits on the I/O threads.
 */
export function cachedReader(): CachedRead | null {
  const preadv2 = libcIfAllowed()?.preadv2;
  if (!preadv2) return null;
  // One struct iovec { void *iov_base; size_t iov_len; }, reused by every call.
  const iov = new BigUint64Array(2);
  return (fd, buf, offset) => {
    if (buf.length === 0) return 0;
    iov[0] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
    iov[1] = BigInt(buf.length);
    const n = Number(preadv2(fd, iov, 1, BigInt(offset), RWF_NOWAIT));
    return n > 0 ? n : 0; // EAGAIN (not cached), EOPNOTSUPP, or anything else: wait instead
  };
}
