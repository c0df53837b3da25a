/**
 * Test helpers for tests that need real outside tools (FUSE, QEMU, curl, ...). Such tests run
 * for real in CI, where .ci/run installs the tools; where a tool is missing they print a loud
 * SKIP line and are reported as ignored, never as passed.
 */

/** True when `cmd` runs (found on PATH). */
export function have(cmd: string): boolean {
  try {
    const p = new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .outputSync();
    return p.success;
  } catch {
    return false;
  }
}

/**
 * Returns `ignore: true` (and prints why, loudly) when any requirement is missing.
 * Use as `Deno.test({ name, ...needs("qemu-img", "curl"), fn })`.
 */
export function needs(...cmds: string[]): { ignore: boolean } {
  const missing = cmds.filter((c) => c.startsWith("/") ? !exists(c) : !have(c));
  if (missing.length) {
    console.error(`\n!!! SKIP: missing ${missing.join(", ")}: install them (see .ci/run) !!!\n`);
  }
  return { ignore: missing.length > 0 };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A fresh temporary directory, removed by the returned function. */
export async function tempDir(prefix = "hexz-test-"): Promise<[string, () => Promise<void>]> {
  const dir = await Deno.makeTempDir({ prefix });
  return [dir, () => Deno.remove(dir, { recursive: true }).catch(() => {})];
}

/** Deterministic pseudo-random bytes (xorshift32), for reproducible test data. */
export function pseudoRandom(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
