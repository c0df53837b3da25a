/**
 * The one error type hexz throws for expected failures: bad input, corrupt archives, wrong
 * passwords, usage mistakes. The CLI prints `message` on one line and exits with `exitCode`.
 * Anything else that escapes is a bug.
 *
 * @module
 */

/** Machine-readable error kinds, stable across versions. */
export type HexzErrorCode =
  | "usage" // bad flags or parameters (exit 2)
  | "io" // the file system or network failed
  | "not-found" // an input file, stream or archive member does not exist
  | "exists" // refusing to overwrite without --force
  | "format" // not a hexz archive, or an unsupported version or feature
  | "corrupt" // a checksum or hash does not match, or a field is out of bounds
  | "parent" // a thin archive's parent is missing or is not the recorded one
  | "password" // wrong password or key
  | "signature" // signature missing or invalid
  | "unsupported"; // valid input that this build cannot handle

export class HexzError extends Error {
  readonly code: HexzErrorCode;
  constructor(code: HexzErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "HexzError";
    this.code = code;
  }
  /** 2 for usage errors (like most Unix tools), 1 for everything else. */
  get exitCode(): number {
    return this.code === "usage" ? 2 : 1;
  }
}

/** The message (code "password") of reading an encrypted archive opened without its
 * password; callers may add where the password comes from. */
export const LOCKED = "archive is encrypted: give the password";

/** Throws a `corrupt` error unless `cond` holds. Used to validate every field read from disk. */
export function ensure(cond: boolean, message: string): asserts cond {
  if (!cond) throw new HexzError("corrupt", message);
}

/**
 * The reason of an operating-system error without what the runtime adds around it, so that a
 * message names the path once: Deno's "No such file or directory (os error 2): open '/x'" and
 * node:fs's "ENOENT: no such file or directory, open '/x'" both give "no such file or
 * directory", lower case like hexz's own messages (`hexz: /x: no such file or directory`).
 */
export function osReason(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  const deno = /^(.+?) \(os error \d+\)/.exec(m);
  if (deno) return lowerFirst(deno[1]);
  const node = /^E[A-Z]+: ([^,]+)/.exec(m);
  if (node) return lowerFirst(node[1]);
  return m;
}

/** `No such file` -> `no such file`, as hexz's own messages read; `EOF...` stays. */
function lowerFirst(s: string): string {
  return /^[A-Z][a-z]/.test(s) ? s[0].toLowerCase() + s.slice(1) : s;
}
