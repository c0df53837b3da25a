/**
 * The key hierarchy of encrypted archives (docs/SECURITY.md, "Encryption"):
 *
 * ```
 * password --KDF(chain salt)--> password key
 *   chain subkeys  = BLAKE3-derive(context, password key || chain salt)
 *     block identity key, key-check key            (shared along a chain of thin archives)
 *   archive subkeys = BLAKE3-derive(context, password key || chain salt || archive salt)
 *     block key, section key, nonce key, index key, header key   (one archive only)
 * ```
 *
 * `ArchiveKeys` bundles what the writer and reader do with them: the keyed block identity,
 * sealing and opening blocks, sections and index pages, the key check and the header MAC.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { concatBytes, equalBytes, view } from "../format/bytes.ts";
import {
  CIPHER,
  type EncryptionFields,
  type Header,
  headerMacInput,
  NONCE_MODE,
} from "../format/header.ts";
import { HASH_SIZE, PAGE_HEADER_SIZE } from "../format/constants.ts";
import { blake3, blake3DeriveKey, blake3Keyed, toHex } from "../hash/blake3.ts";
import {
  ctr,
  importCtrKey,
  importGcmKey,
  seal,
  SEAL_OVERHEAD,
  sealJoined,
  type SealKey,
  unseal,
} from "./aead.ts";
import {
  checkKdfParams,
  decodeKdf,
  DEFAULT_KDF,
  derivePasswordKey,
  describeKdf,
  encodeKdf,
  type KdfName,
  type KdfParams,
  type KdfReport,
  kdfReport,
} from "./kdf.ts";

/** How to encrypt a new archive (`pack`/`build` option `encrypt`). */
export interface EncryptOptions {
  /** The password. A thin archive on an encrypted base may omit it: the base's key is used. */
  password?: string;
  /** Key derivation: a name for the defaults, or explicit parameters. Default Argon2id. */
  kdf?: KdfName | KdfParams;
  /** Random 96-bit nonces instead of synthetic ones (see docs/SECURITY.md). */
  randomNonce?: boolean;
  /**
   * Instead of a password: encrypt in this chain (`ArchiveKeys.chain` of an archive opened
   * with its password), with the same password, key derivation and block identities as that
   * archive. `flatten` and `commitOverlay` use it to keep an encrypted base's encryption.
   */
  chain?: ChainKey;
}

/** What reading an encrypted archive needs: the password, or the password key it gives. */
export interface Secret {
  password?: string;
  /** The 32-byte password key of the archive's chain (`ArchiveKeys.chain.key`). */
  key?: Uint8Array;
}

/** The part shared along a chain of thin archives. */
export interface ChainKey {
  kdf: KdfParams;
  salt: Uint8Array;
  /** The password key: KDF(password, salt). */
  key: Uint8Array;
}

export type NonceMode = "synthetic" | "random";

export interface ArchiveKeys {
  readonly chain: ChainKey;
  readonly archiveSalt: Uint8Array;
  readonly nonceMode: NonceMode;
  /** The stored hash of a block: keyed BLAKE3 (chain identity key) of its plain BLAKE3. */
  identify(plainHash: Uint8Array): Uint8Array;
  /** Seals a block payload: [nonce, ciphertext || tag], SEAL_OVERHEAD bytes longer in all. */
  sealBlock(payload: Uint8Array): Promise<[Uint8Array, Uint8Array]>;
  openBlock(stored: Uint8Array, what: string): Promise<Uint8Array>;
  sealSection(kind: string, bytes: Uint8Array): Promise<Uint8Array>;
  openSection(kind: string, stored: Uint8Array): Promise<Uint8Array>;
  /** Encrypts the entries of an encoded page stored at file `offset`; re-checksums it. */
  sealPage(page: Uint8Array, offset: number): Promise<Uint8Array>;
  /** Checks a stored page's checksum, decrypts its entries, re-checksums the plain page. */
  openPage(stored: Uint8Array, offset: number, what: string): Promise<Uint8Array>;
  /** The header fields, with the MAC still zero. */
  fields(): EncryptionFields;
  /** The header MAC of encoded header bytes. */
  mac(headerBytes: Uint8Array): Uint8Array;
}

export { SEAL_OVERHEAD };

const CONTEXT = {
  identity: "hexz 2025-06 v1 block identity key",
  check: "hexz 2025-06 v1 key check key",
  block: "hexz 2025-06 v1 block encryption key",
  section: "hexz 2025-06 v1 section encryption key",
  nonce: "hexz 2025-06 v1 synthetic nonce key",
  index: "hexz 2025-06 v1 index page encryption key",
  header: "hexz 2025-06 v1 header MAC key",
} as const;
const KEY_CHECK_MESSAGE = new TextEncoder().encode("hexz key check v1");
const BLOCK_AAD = new TextEncoder().encode("hexz block");
const sectionAad = (kind: string) => new TextEncoder().encode(`hexz section ${kind}`);

/** The key check value of a chain: keyed BLAKE3 of a constant under the key-check key. */
export function keyCheckValue(chain: ChainKey): Uint8Array {
  const k = blake3DeriveKey(CONTEXT.check, concatBytes(chain.key, chain.salt));
  return blake3Keyed(k, KEY_CHECK_MESSAGE);
}

/** Derives every subkey of one archive. */
export async function deriveArchiveKeys(
  chain: ChainKey,
  archiveSalt: Uint8Array,
  nonceMode: NonceMode,
): Promise<ArchiveKeys> {
  const chainMaterial = concatBytes(chain.key, chain.salt);
  const material = concatBytes(chain.key, chain.salt, archiveSalt);
  const identityKey = blake3DeriveKey(CONTEXT.identity, chainMaterial);
  const nonceKey = nonceMode === "synthetic" ? blake3DeriveKey(CONTEXT.nonce, material) : null;
  const headerKey = blake3DeriveKey(CONTEXT.header, material);
  const block: SealKey = {
    aes: await importGcmKey(blake3DeriveKey(CONTEXT.block, material)),
    nonceKey,
  };
  const section: SealKey = {
    aes: await importGcmKey(blake3DeriveKey(CONTEXT.section, material)),
    nonceKey,
  };
  const index = await importCtrKey(blake3DeriveKey(CONTEXT.index, material));
  const check = keyCheckValue(chain);

  /** Pages: the 12-byte CTR nonce is the page's file offset (u64), unique in the archive. */
  const pageIv = (offset: number) => {
    const iv = new Uint8Array(12);
    const dv = view(iv);
    dv.setUint32(0, offset % 2 ** 32, true);
    dv.setUint32(4, Math.floor(offset / 2 ** 32), true);
    return iv;
  };
  const recrypt = async (page: Uint8Array, offset: number) => {
    const out = page.slice();
    const end = out.length - HASH_SIZE;
    out.set(
      await ctr(index, pageIv(offset), out.subarray(PAGE_HEADER_SIZE, end)),
      PAGE_HEADER_SIZE,
    );
    out.set(blake3(out.subarray(0, end)), end);
    return out;
  };

  return {
    chain,
    archiveSalt,
    nonceMode,
    identify: (plainHash) => blake3Keyed(identityKey, plainHash),
    sealBlock: (payload) => seal(block, BLOCK_AAD, payload),
    openBlock: (stored, what) => unseal(block.aes, BLOCK_AAD, stored, what),
    sealSection: (kind, bytes) => sealJoined(section, sectionAad(kind), bytes),
    openSection: (kind, stored) => unseal(section.aes, sectionAad(kind), stored, `${kind} section`),
    sealPage: recrypt,
    async openPage(stored, offset, what) {
      const end = stored.length - HASH_SIZE;
      if (
        end < PAGE_HEADER_SIZE || !equalBytes(blake3(stored.subarray(0, end)), stored.subarray(end))
      ) {
        throw new HexzError("corrupt", `${what}: checksum mismatch`);
      }
      return await recrypt(stored, offset);
    },
    fields: () => ({
      kdf: encodeKdf(chain.kdf),
      archiveSalt: archiveSalt.slice(),
      chainSalt: chain.salt.slice(),
      keyCheck: check,
      nonceMode: NONCE_MODE[nonceMode],
      cipher: CIPHER.aes256gcm,
      headerMac: new Uint8Array(32),
    }),
    mac: (headerBytes) => blake3Keyed(headerKey, headerMacInput(headerBytes)),
  };
}

/** The base of a thin archive, as far as keys go (an `Archive` fits). */
export interface KeyedBase {
  header: Header;
  keys?: ArchiveKeys | null;
}

/**
 * The keys of a new archive, or null to write it unencrypted. A thin archive on an encrypted
 * base is always encrypted, in the base's chain (same password key and chain salt, so block
 * identities match); an encrypted archive cannot be thin on an unencrypted base.
 */
export async function keysForPack(
  opts: EncryptOptions | undefined,
  base?: KeyedBase,
): Promise<ArchiveKeys | null> {
  const baseEnc = base?.header.encryption ?? null;
  if (!opts && !baseEnc) return null;
  const nonceMode: NonceMode = opts?.randomNonce ? "random" : "synthetic";
  const archiveSalt = crypto.getRandomValues(new Uint8Array(32));
  if (base && !baseEnc) {
    throw new HexzError(
      "usage",
      "the base archive is not encrypted: an encrypted archive cannot be thin on it",
    );
  }
  if (base && baseEnc) {
    if (!base.keys) {
      throw new HexzError("password", "the base archive is encrypted: open it with the password");
    }
    const chain = base.keys.chain;
    if (opts?.kdf !== undefined) {
      throw new HexzError(
        "usage",
        "a thin archive keeps its base's key derivation: do not give a KDF",
      );
    }
    if (opts?.password !== undefined) {
      const k = await derivePasswordKey(opts.password, chain.salt, chain.kdf);
      if (!equalBytes(k, chain.key)) {
        throw new HexzError("password", "wrong password: a thin archive uses its base's password");
      }
    }
    return await deriveArchiveKeys(chain, archiveSalt, nonceMode);
  }
  if (opts?.chain && opts.password === undefined && opts.kdf === undefined) {
    return await deriveArchiveKeys(opts.chain, archiveSalt, nonceMode);
  }
  if (!opts?.password) throw new HexzError("usage", "encryption needs a password");
  const kdf = typeof opts.kdf === "object" ? { ...opts.kdf } : DEFAULT_KDF[opts.kdf ?? "argon2id"];
  if (!kdf) throw new HexzError("usage", `unknown key derivation '${opts.kdf}'`);
  checkKdfParams(kdf);
  const salt = crypto.getRandomValues(new Uint8Array(32));
  const chain: ChainKey = { kdf, salt, key: await derivePasswordKey(opts.password, salt, kdf) };
  return await deriveArchiveKeys(chain, archiveSalt, nonceMode);
}

/**
 * Unlocks an encrypted archive from its header: derives the password key (or takes the given
 * one), refuses a wrong one with HexzError("password", "wrong password") before anything else
 * is read, then checks the header MAC. `cache` (KDF field and chain salt -> password key) spares
 * re-running the KDF for each archive of a chain.
 */
export async function unlock(
  e: EncryptionFields,
  headerBytes: Uint8Array,
  secret: Secret,
  cache?: Map<string, Uint8Array>,
): Promise<ArchiveKeys> {
  const kdf = decodeKdf(e.kdf);
  let key = secret.key;
  if (key !== undefined && key.length !== 32) {
    throw new HexzError("usage", "an archive key is 32 bytes");
  }
  if (!key) {
    const id = toHex(e.kdf) + toHex(e.chainSalt) +
      toHex(blake3(new TextEncoder().encode(secret.password ?? "")));
    key = cache?.get(id);
    if (!key) {
      key = await derivePasswordKey(secret.password ?? "", e.chainSalt, kdf);
      cache?.set(id, key);
    }
  }
  const chain: ChainKey = { kdf, salt: e.chainSalt.slice(), key };
  if (!equalBytes(keyCheckValue(chain), e.keyCheck)) {
    throw new HexzError("password", "wrong password");
  }
  const nonceMode: NonceMode = e.nonceMode === NONCE_MODE.random ? "random" : "synthetic";
  const keys = await deriveArchiveKeys(chain, e.archiveSalt.slice(), nonceMode);
  if (!equalBytes(keys.mac(headerBytes), e.headerMac)) {
    throw new HexzError(
      "corrupt",
      "header authentication failed: the header was changed after the archive was written",
    );
  }
  return keys;
}

/** What `inspect` may show of an encrypted archive without the password. */
export interface EncryptionReport {
  cipher: string;
  /** Null when the header's KDF field is not one this hexz knows. */
  kdf: KdfReport | null;
  /** e.g. "argon2id (64 MiB, 3 passes, 1 lane)" */
  kdfDescription: string;
  nonces: NonceMode;
  /** Whether the archive was opened with the right password. */
  unlocked: boolean;
}

export function describeEncryption(e: EncryptionFields, unlocked: boolean): EncryptionReport {
  let kdf: KdfParams | null = null;
  try {
    kdf = decodeKdf(e.kdf);
  } catch {
    // Shown as unknown; opening with a password reports the problem.
  }
  return {
    cipher: "AES-256-GCM (index pages AES-256-CTR)",
    kdf: kdf ? kdfReport(kdf) : null,
    kdfDescription: kdf ? describeKdf(kdf) : "unknown",
    nonces: e.nonceMode === NONCE_MODE.random ? "random" : "synthetic",
    unlocked,
  };
}
