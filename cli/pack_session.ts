/**
 * What `pack` and `build` share around their library call: the workers started before the
 * packing code loads (it takes this thread about as long as a worker takes to be ready, 40-60
 * ms here), the archive of `--base` and the encryption options from the flags, and progress;
 * everything closed whatever happens.
 *
 * @module
 */
import type { Archive } from "../core/read/archive.ts";
import type { EncryptOptions } from "../core/crypto/keys.ts";
import type { PackProgress } from "../core/pack/pack.ts";
import { type PackPool, packPool, type PackPoolRequest } from "../core/pack/pool.ts";
import { baseAndEncryption, type EncryptFlags } from "./password.ts";
import { createProgress } from "./progress.ts";
import { info } from "./common.ts";
import { formatRatio, formatSize } from "./units.ts";

/** The options a session gives its pack call. */
export interface PackSession {
  base?: Archive;
  encrypt?: EncryptOptions;
  pool?: PackPool;
  onProgress: (p: PackProgress) => void;
}

/**
 * Runs `fn` with the session's options. `workers` is what decides the pool, or null to start
 * none here (with a dictionary to train, the pack decides once it knows whether one helps).
 */
export async function packSession<T>(
  label: string,
  o: EncryptFlags & { base?: string; silent?: boolean },
  workers: PackPoolRequest | null,
  fn: (s: PackSession) => Promise<T>,
): Promise<T> {
  const pool = workers ? packPool(workers) : null;
  const progress = createProgress(label, !!o.silent);
  let base: Archive | undefined;
  try {
    const opened = await baseAndEncryption(o);
    base = opened.base;
    return await fn({
      base,
      encrypt: opened.encrypt,
      pool: pool ?? undefined,
      onProgress: (p) => progress.update(p.done, p.total),
    });
  } finally {
    pool?.close();
    progress.finish();
    base?.close();
  }
}

/** `64 MiB => 18.3 MiB (3.49x)`: what a pack read and what it wrote. */
export function sizesLine(r: { inputBytes: number; outputBytes: number }): string {
  return `${formatSize(r.inputBytes)} => ${formatSize(r.outputBytes)} (${
    formatRatio(r.inputBytes && r.outputBytes ? r.inputBytes / r.outputBytes : null)
  })`;
}

/** The note when `--train-dict` was asked for and no dictionary was stored. */
export function noteNoDictionary(
  asked: unknown,
  r: { header: { dictionary: { length: number } } },
  silent: boolean,
): void {
  if (!asked || r.header.dictionary.length > 0) return;
  info(
    "hexz: note: --train-dict stored no dictionary: too few samples were usable, or none " +
      "saved more than its own size",
    silent,
  );
}
