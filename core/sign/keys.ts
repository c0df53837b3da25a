/**
 * Ed25519 signing keys through WebCrypto, stored as PEM the way OpenSSL writes them: the
 * private key as PKCS#8 ("PRIVATE KEY"), the public key as SubjectPublicKeyInfo ("PUBLIC KEY").
 * A key's id is the first 8 bytes of BLAKE3 of its SPKI (DER) encoding.
 *
 * @module
 */
import { HexzError, osReason } from "../errors.ts";
import { createAtomicFile, writeAll } from "../io/atomic.ts";
import { blake3, toHex } from "../hash/blake3.ts";
import { expectOptions, expectString } from "../args.ts";

const ED25519 = { name: "Ed25519" } as const;
/** The SPKI DER encoding of an Ed25519 key is this prefix followed by the 32 raw key bytes. */
const SPKI_PREFIX = new Uint8Array([
  0x30,
  0x2a,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x03,
  0x21,
  0x00,
]);
/** PEM files larger than this are not keys. */
const MAX_PEM = 16 * 1024;

export interface KeyPair {
  /** PKCS#8 PEM ("PRIVATE KEY"). */
  privatePem: string;
  /** SPKI PEM ("PUBLIC KEY"). */
  publicPem: string;
  /** Hex of the 8-byte key id. */
  keyId: string;
}

/** A private key ready to sign, with its public half. */
export interface SigningKey {
  key: CryptoKey;
  publicKey: Uint8Array;
  keyId: Uint8Array;
}

/** A public key ready to verify. */
export interface VerifyingKey {
  key: CryptoKey;
  publicKey: Uint8Array;
  keyId: Uint8Array;
}

function toPem(label: string, der: Uint8Array): string {
  let b64 = "";
  for (let i = 0; i < der.length; i += 0x8000) {
    b64 += String.fromCharCode(...der.subarray(i, i + 0x8000));
  }
  const lines = btoa(b64).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** The DER bytes of the first PEM block labelled `label`; throws naming `what` otherwise. */
export function fromPem(pem: string, label: string, what: string): Uint8Array<ArrayBuffer> {
  if (pem.length > MAX_PEM) throw new HexzError("usage", `${what}: too large for a PEM key`);
  const m = pem.match(
    new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*)-----END ${label}-----`),
  );
  if (!m) {
    const other = pem.match(/-----BEGIN ([A-Z0-9 ]+)-----/);
    throw new HexzError(
      "usage",
      other
        ? `${what}: expected a PEM "${label}", found "${other[1]}"`
        : `${what}: not a PEM file (expected "${label}")`,
    );
  }
  try {
    return Uint8Array.from(atob(m[1].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  } catch {
    throw new HexzError("usage", `${what}: bad base64 in the PEM "${label}"`);
  }
}

/** The key id of a raw 32-byte Ed25519 public key. */
export function keyIdOf(publicKey: Uint8Array): Uint8Array {
  const spki = new Uint8Array(SPKI_PREFIX.length + 32);
  spki.set(SPKI_PREFIX);
  spki.set(publicKey, SPKI_PREFIX.length);
  return blake3(spki).slice(0, 8);
}

function fromBase64Url(s: string): Uint8Array {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(b64 + "=".repeat((4 - b64.length % 4) % 4)), (c) => c.charCodeAt(0));
}

/** A fresh Ed25519 key pair as PEM text. */
export async function generateKeyPair(): Promise<KeyPair> {
  const kp = await crypto.subtle.generateKey(ED25519, true, ["sign", "verify"]) as CryptoKeyPair;
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", kp.privateKey));
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", kp.publicKey));
  return {
    privatePem: toPem("PRIVATE KEY", pkcs8),
    publicPem: toPem("PUBLIC KEY", spki),
    keyId: toHex(blake3(spki).slice(0, 8)),
  };
}

/** Imports a PKCS#8 PEM Ed25519 private key (ours or `openssl genpkey -algorithm ed25519`). */
export async function importPrivateKey(pem: string, what = "private key"): Promise<SigningKey> {
  const der = fromPem(pem, "PRIVATE KEY", what);
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey("pkcs8", der, ED25519, true, ["sign"]);
  } catch {
    throw new HexzError("usage", `${what}: not an Ed25519 private key`);
  }
  // WebCrypto derives the public half on import; JWK export is the portable way to get it.
  const jwk = await crypto.subtle.exportKey("jwk", key);
  const publicKey = fromBase64Url(jwk.x ?? "");
  if (publicKey.length !== 32) throw new HexzError("usage", `${what}: no Ed25519 public key`);
  return { key, publicKey, keyId: keyIdOf(publicKey) };
}

/** Imports an SPKI PEM Ed25519 public key. */
export async function importPublicKey(pem: string, what = "public key"): Promise<VerifyingKey> {
  const der = fromPem(pem, "PUBLIC KEY", what);
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey("spki", der, ED25519, true, ["verify"]);
  } catch {
    throw new HexzError("usage", `${what}: not an Ed25519 public key`);
  }
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", key));
  return { key, publicKey, keyId: keyIdOf(publicKey) };
}

/** Imports a raw 32-byte Ed25519 public key (as found in a signature trailer). */
export async function importRawPublicKey(raw: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  return await crypto.subtle.importKey("raw", raw, ED25519, false, ["verify"]);
}

/** Reads a PEM key file, refusing anything too large to be one. */
export async function readKeyFile(path: string): Promise<string> {
  expectString(path, "readKeyFile");
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new HexzError("not-found", `${path}: no such file`);
    }
    throw new HexzError("io", `${path}: ${osReason(e)}`);
  }
  if (!info.isFile || info.size > MAX_PEM) {
    throw new HexzError("usage", `${path}: not a PEM key file`);
  }
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new HexzError("io", `${path}: ${osReason(e)}`);
  }
}

export interface SaveKeyPairOptions {
  /** Directory to write into (default "."), created (mode 0700) if missing. */
  dir?: string;
  /** Base name: writes NAME.key and NAME.pub (default "hexz"). */
  name?: string;
  /** Replace existing files. */
  force?: boolean;
}

/**
 * Writes NAME.key (mode 0600) and NAME.pub (0644) crash-safely; refuses to replace either
 * unless `force`, and checks both before writing anything.
 */
export async function saveKeyPair(
  pair: KeyPair,
  opts: SaveKeyPairOptions = {},
): Promise<{ privatePath: string; publicPath: string }> {
  expectOptions(pair, "saveKeyPair: key pair", true);
  expectOptions(opts, "saveKeyPair: options");
  const dir = (opts.dir ?? ".").replace(/\/+$/, "") || "/";
  const name = opts.name ?? "hexz";
  if (!name || name.includes("/") || name === "." || name === "..") {
    throw new HexzError("usage", `bad key name '${name}' (a file name without '/')`);
  }
  const privatePath = `${dir}/${name}.key`;
  const publicPath = `${dir}/${name}.pub`;
  // A missing directory is created (as `mkdir -p` would), private to its owner.
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) {
      throw new HexzError("io", `${dir}: ${osReason(e)}`);
    }
    throw new HexzError("usage", `${dir}: not a directory`); // a file of that name
  }
  if (!opts.force) {
    for (const p of [privatePath, publicPath]) {
      try {
        await Deno.lstat(p);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) continue;
        throw new HexzError("io", `${p}: ${osReason(e)}`);
      }
      throw new HexzError("exists", `${p}: already exists (use --force to overwrite)`);
    }
  }
  const enc = new TextEncoder();
  for (
    const [path, text, mode] of [
      [privatePath, pair.privatePem, 0o600],
      [publicPath, pair.publicPem, 0o644],
    ] as const
  ) {
    const f = await createAtomicFile(path, opts.force);
    try {
      // Restrict the mode before the secret is written, not after.
      await Deno.chmod(f.tempPath, mode);
      await writeAll(f.file, enc.encode(text), path);
      await f.commit();
    } catch (e) {
      await f.abort();
      throw e;
    }
  }
  return { privatePath, publicPath };
}
