/**
 * What every subcommand shares: printing, and opening an archive for the length of a call.
 * Nothing here loads the reading code until an archive is opened, so a command can start
 * work (the pack workers) before it loads the code it calls.
 *
 * @module
 */
import type { Archive } from "../core/read/archive.ts";
import { HexzError } from "../core/errors.ts";
import { openWithPassword, type PasswordOpenOptions } from "./password.ts";
import { oneLine } from "./line.ts";

export type { Archive };

const enc = new TextEncoder();

/** Refuses "-" (standard output) as an output path, with what to do instead. */
export function fileOutput(output: string, instead: string): string {
  if (output === "-") throw new HexzError("usage", `cannot write to standard output: ${instead}`);
  return output;
}

/** Writes a line to stdout. */
export function out(line = ""): void {
  Deno.stdout.writeSync(enc.encode(line + "\n"));
}

/** Writes a line to stderr unless silent (control characters escaped: cli/line.ts). */
export function info(line: string, silent = false): void {
  if (!silent) Deno.stderr.writeSync(enc.encode(oneLine(line) + "\n"));
}

/**
 * Refuses `--daemon` up front when Deno may not start the background process (no
 * `--allow-run`), rather than failing half way with the runtime's error.
 */
export function checkDaemonPermission(): void {
  const state = Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state;
  if (state !== "granted") {
    throw new HexzError(
      "unsupported",
      "--daemon starts a background process: run deno with --allow-run (or leave out --daemon)",
    );
  }
}

/** Opens an archive (asking for its password if needed), runs `fn`, and closes the archive
 * whatever happens. */
export async function withArchive<T>(
  path: string,
  fn: (a: Archive) => Promise<T>,
  opts: PasswordOpenOptions = {},
): Promise<T> {
  const a = await openWithPassword(path, opts);
  try {
    return await fn(a);
  } finally {
    a.close();
  }
}
