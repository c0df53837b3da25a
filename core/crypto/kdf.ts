/**
 * Password-based key derivation: the password and the chain salt become the 32-byte password
 * key, with Argon2id (hash-wasm) or PBKDF2-HMAC-SHA256 (WebCrypto). The algorithm and its
 * parameters are the 48-byte KDF field of the header (docs/FORMAT.md, "Header"; docs/SECURITY.md,
 * "Encryption"). Parameters read from a header are bounded so that a hostile file cannot make
 * the reader allocate or loop without limit.
 *
 * @module
 */
import { ensure, HexzError } from "../errors.ts";
import { view } from "../format/bytes.ts";
import { buf } from "./aead.ts";

export type KdfName = "argon2id" | "pbkdf2";

export interface KdfParams {
  name: KdfName;
  /** Argon2id memory in KiB (0 for PBKDF2). */
  memoryKiB: number;
  /** Argon2id passes, or PBKDF2 iterations. */
  iterations: number;
  /** Argon2id lanes (0 for PBKDF2). */
  parallelism: number;
}

/** The parameters a report shows: those the algorithm has (PBKDF2 has no memory or lanes,
 * whose fields in `KdfParams` are 0 and mean nothing). */
export type KdfReport =
  | { name: "argon2id"; memoryKiB: number; iterations: number; parallelism: number }
  | { name: "pbkdf2"; iterations: number };

/** `p` as a report shows it: only the parameters its algorithm has. */
export function kdfReport(p: KdfParams): KdfReport {
  return p.name === "pbkdf2" ? { name: "pbkdf2", iterations: p.iterations } : {
    name: p.name,
    memoryKiB: p.memoryKiB,
    iterations: p.iterations,
    parallelism: p.parallelism,
  };
}

/** The KDF field is this long. */
export const KDF_FIELD_SIZE = 48;
const KDF_ID: Record<KdfName, number> = { argon2id: 1, pbkdf2: 2 };
const ARGON2_VERSION = 0x13;

/** What `pack --encrypt` uses unless told otherwise. */
export const DEFAULT_KDF: Record<KdfName, KdfParams> = {
  argon2id: { name: "argon2id", memoryKiB: 64 * 1024, iterations: 3, parallelism: 1 },
  pbkdf2: { name: "pbkdf2", memoryKiB: 0, iterations: 600_000, parallelism: 0 },
};

/** Upper bounds accepted from a header (and when packing). */
const MAX_ARGON2_MEMORY_KIB = 1024 * 1024; // 1 GiB
const MAX_ARGON2_PASSES = 64;
const MAX_ARGON2_LANES = 64;
const MAX_PBKDF2_ITERATIONS = 50_000_000;

export function parseKdfName(s: string): KdfName {
  if (s === "argon2id" || s === "pbkdf2") return s;
  throw new HexzError("usage", `unknown key derivation '${s}' (expected argon2id or pbkdf2)`);
}

/** Why `p` is not acceptable, or null. */
function kdfProblem(p: KdfParams): string | null {
  const int = (n: number, lo: number, hi: number) => Number.isInteger(n) && n >= lo && n <= hi;
  if (p.name === "argon2id") {
    if (!int(p.parallelism, 1, MAX_ARGON2_LANES)) return `argon2id lanes ${p.parallelism}`;
    if (!int(p.iterations, 1, MAX_ARGON2_PASSES)) return `argon2id passes ${p.iterations}`;
    if (!int(p.memoryKiB, 8 * p.parallelism, MAX_ARGON2_MEMORY_KIB)) {
      return `argon2id memory ${p.memoryKiB} KiB`;
    }
    return null;
  }
  if (p.name === "pbkdf2") {
    if (p.memoryKiB !== 0 || p.parallelism !== 0) return "pbkdf2 with memory or lanes";
    if (!int(p.iterations, 1, MAX_PBKDF2_ITERATIONS)) return `pbkdf2 iterations ${p.iterations}`;
    return null;
  }
  return `key derivation '${p.name}'`;
}

/** Throws a usage error unless `p` is within the accepted bounds. */
export function checkKdfParams(p: KdfParams): void {
  const why = kdfProblem(p);
  if (why) throw new HexzError("usage", `unsupported key-derivation parameters: ${why}`);
}

/**
 * The 48-byte field: algorithm u8 (1 Argon2id, 2 PBKDF2-HMAC-SHA256), Argon2 version u8 (0x13,
 * or 0), reserved u16, memory KiB u32, iterations u32, lanes u32, 32 reserved zero bytes.
 */
export function encodeKdf(p: KdfParams): Uint8Array {
  checkKdfParams(p);
  const bytes = new Uint8Array(KDF_FIELD_SIZE);
  const dv = view(bytes);
  dv.setUint8(0, KDF_ID[p.name]);
  dv.setUint8(1, p.name === "argon2id" ? ARGON2_VERSION : 0);
  dv.setUint32(4, p.memoryKiB, true);
  dv.setUint32(8, p.iterations, true);
  dv.setUint32(12, p.parallelism, true);
  return bytes;
}

/** Decodes and bounds the KDF field of a header; throws "corrupt" or "unsupported". */
export function decodeKdf(bytes: Uint8Array): KdfParams {
  ensure(bytes.length === KDF_FIELD_SIZE, "header: key-derivation field has the wrong size");
  const dv = view(bytes);
  const id = dv.getUint8(0);
  const name = (Object.keys(KDF_ID) as KdfName[]).find((n) => KDF_ID[n] === id);
  if (!name) throw new HexzError("unsupported", `unknown key-derivation algorithm ${id}`);
  ensure(
    dv.getUint8(1) === (name === "argon2id" ? ARGON2_VERSION : 0) && dv.getUint16(2, true) === 0 &&
      bytes.subarray(16).every((b) => b === 0),
    "header: key-derivation field has unknown versions or reserved bits",
  );
  const p: KdfParams = {
    name,
    memoryKiB: dv.getUint32(4, true),
    iterations: dv.getUint32(8, true),
    parallelism: dv.getUint32(12, true),
  };
  const why = kdfProblem(p);
  if (why) {
    throw new HexzError("unsupported", `header: key-derivation parameters out of range: ${why}`);
  }
  return p;
}

/** The password key: KDF(password, salt) with `p`, 32 bytes. */
export async function derivePasswordKey(
  password: string,
  salt: Uint8Array,
  p: KdfParams,
): Promise<Uint8Array> {
  checkKdfParams(p);
  const pw = new TextEncoder().encode(password.normalize("NFC"));
  if (p.name === "argon2id") {
    // Loaded on first use: the package costs about 12 ms of start-up, and most runs of hexz
    // derive no key. A complete specifier, so that hexz run from a URL (no import map) finds it.
    // deno-lint-ignore no-import-prefix
    const { argon2id } = await import("npm:hash-wasm@4.13.0");
    return await argon2id({
      password: pw,
      salt,
      iterations: p.iterations,
      parallelism: p.parallelism,
      memorySize: p.memoryKiB,
      hashLength: 32,
      outputType: "binary",
    });
  }
  const base = await crypto.subtle.importKey("raw", pw, "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: buf(salt), iterations: p.iterations },
    base,
    256,
  );
  return new Uint8Array(bits);
}

/** One line for `inspect`, e.g. "argon2id (64 MiB, 3 passes, 1 lane)". */
export function describeKdf(p: KdfParams): string {
  if (p.name === "pbkdf2") return `pbkdf2-sha256 (${p.iterations} iterations)`;
  const mem = p.memoryKiB % 1024 === 0 ? `${p.memoryKiB / 1024} MiB` : `${p.memoryKiB} KiB`;
  return `argon2id (${mem}, ${p.iterations} pass${p.iterations === 1 ? "" : "es"}, ` +
    `${p.parallelism} lane${p.parallelism === 1 ? "" : "s"})`;
}
