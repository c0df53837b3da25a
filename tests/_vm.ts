/**
 * Helpers for tests that run QEMU guests through the hexz command line: what they need, and
 * running hexz with a timeout.
 */
import type { Requirement } from "./_tools.ts";
import { findKernel } from "../vm/guest.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** What a test guest needs: QEMU, the tools that build it, and a kernel with its modules. */
export const VM_NEEDS: Requirement[] = [
  "qemu-system-x86_64",
  "mkfs.ext4",
  "debugfs",
  "/bin/busybox",
  { what: "a kernel with modules in /boot (linux-image-amd64)", met: () => findKernel() !== null },
];

/** Runs the hexz CLI; SIGKILLed after `timeoutMs`. */
export async function hexz(
  args: string[],
  timeoutMs = 180_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", "--allow-all", CLI, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}
