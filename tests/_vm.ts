/**
 * Helpers for tests that run QEMU guests through the hexz command line: what they need (a loud
 * SKIP without it), and running hexz with a timeout.
 */
import { needs } from "./_tools.ts";
import { findKernel } from "../vm/guest.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** Ignore (with a loud SKIP) without QEMU, mkfs.ext4, debugfs, busybox and a kernel. */
export function vmRequirements(): { ignore: boolean } {
  const tools = needs("qemu-system-x86_64", "mkfs.ext4", "debugfs", "/bin/busybox");
  if (tools.ignore) return tools;
  if (!findKernel()) {
    console.error("\n!!! SKIP: no kernel with modules in /boot (apt linux-image-amd64) !!!\n");
    return { ignore: true };
  }
  return tools;
}

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
