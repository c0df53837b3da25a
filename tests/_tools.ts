/**
 * Test helpers. Tests that need something outside Deno (a tool, root, FUSE, a kernel for QEMU)
 * declare it with `needs`: they run for real where it is there (CI installs everything, see
 * .ci/run) and, where it is not, print a loud `SKIP <test>: <why>` line and are reported as
 * ignored, never as passed. A test never checks for a tool itself and returns early.
 */

/**
 * What a test needs: a command on PATH (`"curl"`), an absolute path that must exist
 * (`"/dev/fuse"`), one of the probes below by name (`"root"`, `"fuse"`, `"tmpfs"`, `"loop"`), or
 * a probe of the test's own (`{ what: "a kernel in /boot", met: () => findKernel() !== null }`).
 */
export type Requirement = string | { what: string; met: () => boolean };

/** Named probes: checked when the test is registered, each at most once per process. */
const PROBES: Record<string, { what: string; met: () => boolean }> = {
  root: { what: "root", met: () => Deno.uid() === 0 },
  // mount(2) of /dev/fuse is what `hexz mount` does: it takes the device and root.
  fuse: { what: "FUSE as root (/dev/fuse, fusermount3)", met: () => fuseUsable() },
  tmpfs: { what: "mounting a tmpfs (root)", met: () => tmpfsMountable() },
  loop: { what: "a free loop device (losetup, root)", met: () => loopAvailable() },
};

const cache = new Map<string, boolean>();

function probe(key: string, met: () => boolean): boolean {
  if (!cache.has(key)) {
    let ok = false;
    try {
      ok = met();
    } catch {
      ok = false;
    }
    cache.set(key, ok);
  }
  return cache.get(key)!;
}

function describe(r: Requirement): { what: string; met: boolean } {
  if (typeof r !== "string") return { what: r.what, met: probe(`own:${r.what}`, r.met) };
  const named = PROBES[r];
  if (named) return { what: named.what, met: probe(r, named.met) };
  if (r.startsWith("/")) return { what: r, met: probe(r, () => exists(r)) };
  return { what: r, met: probe(`cmd:${r}`, () => have(r)) };
}

/**
 * The test definition `def`, ignored (with a loud `SKIP <name>: <why>` on stderr) unless every
 * requirement is met. Use as `Deno.test(needs(["qemu-img", "curl"], { name, fn }))`.
 */
export function needs(requirements: Requirement[], def: Deno.TestDefinition): Deno.TestDefinition {
  const missing = requirements.map(describe).filter((r) => !r.met).map((r) => r.what);
  if (missing.length) {
    console.error(
      `\n!!! SKIP ${def.name}: needs ${missing.join(", ")} (.ci/run installs the tools) !!!\n`,
    );
  }
  return { ...def, ignore: Boolean(def.ignore) || missing.length > 0 };
}

/** True when `cmd` is found on PATH. */
export function have(cmd: string): boolean {
  try {
    const p = new Deno.Command("sh", {
      args: ["-c", 'command -v "$1"', "sh", cmd],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return p.success;
  } catch {
    return false;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  try {
    const p = new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).outputSync();
    return { ok: p.success, out: new TextDecoder().decode(p.stdout) };
  } catch {
    return { ok: false, out: "" };
  }
}

function fuseUsable(): boolean {
  return Deno.uid() === 0 && exists("/dev/fuse") && have("fusermount3");
}

function tmpfsMountable(): boolean {
  if (Deno.uid() !== 0) return false;
  const dir = Deno.makeTempDirSync({ prefix: "hexz-probe-" });
  try {
    if (!run("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir]).ok) return false;
    run("umount", [dir]);
    return true;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

function loopAvailable(): boolean {
  // `losetup -f` names the first free device without attaching anything.
  return Deno.uid() === 0 && run("losetup", ["-f"]).ok;
}

/** Anything a test opens and must close: archives, overlays, servers, files. */
export interface Closeable {
  close(): unknown;
}

/**
 * A fresh temporary directory and the function that removes it. The third element, `keep`,
 * registers something to close first (`const a = keep(await open(p))`), so what a test opened is
 * closed even when an assertion fails half-way; closing what the test already closed is
 * harmless.
 */
export async function tempDir(
  prefix = "hexz-test-",
): Promise<[string, () => Promise<void>, <T extends Closeable>(r: T) => T]> {
  const dir = await Deno.makeTempDir({ prefix });
  const open: Closeable[] = [];
  const keep = <T extends Closeable>(r: T): T => {
    open.push(r);
    return r;
  };
  const done = async () => {
    for (const r of open.reverse()) {
      try {
        await r.close();
      } catch { /* already closed */ }
    }
    open.length = 0;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return [dir, done, keep];
}

/**
 * A tmpfs of `size` (as mount takes it: "256k", "1m") mounted on the new directory `dir/small`,
 * for tests of a full disk (they need `["tmpfs"]`), and the function that unmounts it.
 */
export async function smallTmpfs(
  dir: string,
  size: string,
): Promise<[string, () => Promise<void>]> {
  const small = `${dir}/small`;
  await Deno.mkdir(small);
  const m = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", small],
    stderr: "piped",
  }).output();
  if (m.code !== 0) {
    throw new Error(`cannot mount a tmpfs: ${new TextDecoder().decode(m.stderr).trim()}`);
  }
  return [small, async () => void await new Deno.Command("umount", { args: [small] }).output()];
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
