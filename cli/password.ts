/**
 * Where the command line gets passwords of encrypted archives: `--password-file FILE`, else the
 * `HEXZ_PASSWORD` environment variable, else a prompt on the terminal that does not echo (asked
 * twice when creating an archive). Never from the command line itself, where other users and
 * shell history could see it.
 *
 * @module
 */
import { Option } from "./command.ts";
import { envVar } from "./env.ts";
import type { Archive } from "../core/read/archive.ts";
import type { CachedRead } from "../core/io/source.ts";
import { HexzError, osReason } from "../core/errors.ts";
import type { EncryptOptions } from "../core/crypto/keys.ts";
import { parseKdfName } from "../core/crypto/kdf.ts";

const enc = new TextEncoder();
const MAX_PASSWORD_FILE = 64 * 1024;

/** `--password-file <file>`, for every command that opens or creates encrypted archives. */
export function passwordFileOption(): Option {
  return new Option(
    "--password-file <file>",
    "password of encrypted archives: the file's first line (or set HEXZ_PASSWORD)",
  );
}

/** The password from `--password-file` or HEXZ_PASSWORD, or null if neither is given. */
export async function givenPassword(file?: string): Promise<string | null> {
  if (file !== undefined) {
    let text: string;
    try {
      const st = await Deno.stat(file);
      if (!st.isFile || st.size > MAX_PASSWORD_FILE) {
        throw new HexzError("usage", `${file}: not a password file (a small text file)`);
      }
      text = await Deno.readTextFile(file);
    } catch (e) {
      if (e instanceof HexzError) throw e;
      if (e instanceof Deno.errors.NotFound) {
        throw new HexzError("not-found", `${file}: no such file`);
      }
      throw new HexzError("io", `${file}: ${osReason(e)}`);
    }
    const pw = text.split(/\r?\n/, 1)[0];
    if (!pw) throw new HexzError("usage", `${file}: the password is empty`);
    return pw;
  }
  return envVar("HEXZ_PASSWORD") || null; // without --allow-env: as if unset
}

/** Whether a password can be asked on the terminal. */
export function interactive(): boolean {
  return Deno.stdin.isTerminal() && Deno.stderr.isTerminal();
}

/** Reads one line from the terminal without echo (raw mode), prompting on stderr. */
export async function promptPassword(prompt: string): Promise<string> {
  if (!interactive()) {
    throw new HexzError(
      "password",
      "no terminal to ask for a password on: set HEXZ_PASSWORD or use --password-file",
    );
  }
  const bytes: number[] = [];
  const chunk = new Uint8Array(256);
  // Echo goes off before the prompt appears: whoever types after seeing it is never echoed.
  Deno.stdin.setRaw(true);
  try {
    Deno.stderr.writeSync(enc.encode(prompt));
    read: for (;;) {
      const n = await Deno.stdin.read(chunk);
      if (n === null) break;
      for (const b of chunk.subarray(0, n)) {
        if (b === 13 || b === 10 || b === 4) break read; // Enter, Ctrl-D
        if (b === 3) throw new HexzError("usage", "interrupted"); // Ctrl-C
        if (b === 21) bytes.length = 0; // Ctrl-U: start over
        else if (b === 127 || b === 8) {
          // Backspace: drop one UTF-8 character (its continuation bytes, then its lead byte).
          while (bytes.length && (bytes[bytes.length - 1] & 0xc0) === 0x80) bytes.pop();
          bytes.pop();
        } else if (b >= 32) bytes.push(b);
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    Deno.stderr.writeSync(enc.encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** The password for a new encrypted archive: given, or asked twice on the terminal. */
export async function newPassword(file?: string): Promise<string> {
  const given = await givenPassword(file);
  if (given !== null) return given;
  if (!interactive()) {
    throw new HexzError(
      "usage",
      "--encrypt needs a password: set HEXZ_PASSWORD, use --password-file, or run on a terminal",
    );
  }
  const pw = await promptPassword("new password: ");
  if (!pw) throw new HexzError("usage", "the password is empty");
  if (await promptPassword("repeat password: ") !== pw) {
    throw new HexzError("usage", "the passwords do not match");
  }
  return pw;
}

export interface PasswordOpenOptions {
  passwordFile?: string;
  lazyParents?: boolean;
  /** For servers: see `FileSourceOptions.cachedRead`. */
  cachedRead?: CachedRead;
  /** Ask on the terminal when the archive is encrypted and no password is given (default). */
  prompt?: boolean;
}

/**
 * Opens an archive with the given password; without one, an encrypted archive is opened with
 * a password asked on the terminal, or (no terminal, or `prompt: false`) for its header only.
 */
export async function openWithPassword(
  path: string,
  opts: PasswordOpenOptions = {},
): Promise<Archive> {
  // Loaded here, not with this module: `pack` starts its workers before it loads readers.
  const { open } = await import("../net/open.ts");
  const base = { lazyParents: opts.lazyParents, cachedRead: opts.cachedRead };
  const given = await givenPassword(opts.passwordFile);
  if (given !== null) return await open(path, { ...base, password: given });
  const a = await open(path, base);
  if (!a.header.encryption || opts.prompt === false || !interactive()) return a;
  a.close();
  const password = await promptPassword(`password for ${path}: `);
  return await open(path, { ...base, password });
}

/**
 * The password for `path`: given (`--password-file`, HEXZ_PASSWORD), else asked on the
 * terminal if the archive is encrypted, else null (unencrypted, or no terminal to ask on).
 * For commands that hand the password on (a mount, a detached server) rather than open here.
 */
export async function passwordFor(path: string, file?: string): Promise<string | null> {
  const given = await givenPassword(file);
  if (given !== null || !interactive()) return given;
  const { open } = await import("../net/open.ts");
  const a = await open(path, { lazyParents: true });
  const encrypted = !!a.header.encryption;
  a.close();
  return encrypted ? await promptPassword(`password for ${path}: `) : null;
}

/** The flags `pack` and `build` take for encryption. */
export interface EncryptFlags {
  encrypt?: boolean;
  kdf?: string;
  randomNonce?: boolean;
  passwordFile?: string;
}

/**
 * `encrypt` for pack/build from the flags. A thin archive on an encrypted base is encrypted
 * with the base's password (the base was opened with it), whether or not `--encrypt` is given.
 */
export async function encryptOptions(
  o: EncryptFlags,
  base?: Archive,
): Promise<EncryptOptions | undefined> {
  if (base?.header.encryption) {
    if (o.kdf) {
      throw new HexzError("usage", "a thin archive keeps its base's key derivation: drop --kdf");
    }
    return { randomNonce: !!o.randomNonce };
  }
  if (!o.encrypt) {
    if (o.kdf || o.randomNonce) {
      throw new HexzError("usage", "--kdf and --random-nonce go with --encrypt");
    }
    return undefined;
  }
  return {
    password: await newPassword(o.passwordFile),
    kdf: o.kdf ? parseKdfName(o.kdf) : undefined,
    randomNonce: !!o.randomNonce,
  };
}

/**
 * For pack and build: the archive named by `--base` (opened with the password the flags
 * give) and the encryption the flags ask for; the base is closed again if they are wrong.
 */
export async function baseAndEncryption(
  o: EncryptFlags & { base?: string },
): Promise<{ base?: Archive; encrypt?: EncryptOptions }> {
  const base = o.base
    ? await openWithPassword(o.base, { passwordFile: o.passwordFile })
    : undefined;
  try {
    return { base, encrypt: await encryptOptions(o, base) };
  } catch (e) {
    base?.close();
    throw e;
  }
}
