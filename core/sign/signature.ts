/**
 * Signing and verifying archives with Ed25519. A signature covers the fixed message of
 * `signedMessage` (archive UUID, root hash, archiveEnd): the root hash commits to every byte of
 * every stream, the sections and the parent's identity, so signing it signs the archive.
 * Signatures live in trailers after `archiveEnd` (core/sign/trailer.ts); signing never touches
 * the header or any byte before `archiveEnd`. See docs/SECURITY.md, "Signatures".
 *
 * @module
 */
import { HexzError, osReason } from "../errors.ts";
import { createZstdDictCodec } from "../codec/zstd_dict.ts";
import { equalBytes } from "../format/bytes.ts";
import { decodeHeader, type Header } from "../format/header.ts";
import { HEADER_SIZE } from "../format/constants.ts";
import { toHex } from "../hash/blake3.ts";
import { createAtomicFile, writeAll } from "../io/atomic.ts";
import { type ByteSource, fileSource, readExact } from "../io/source.ts";
import { type Archive, openArchive, type OpenOptions } from "../read/archive.ts";
import { checkArchive, type CheckReport } from "../read/check.ts";
import { openParents, parentResolver, type SourceOpener } from "../read/parent.ts";
import {
  generateKeyPair,
  importPrivateKey,
  importPublicKey,
  importRawPublicKey,
  keyIdOf,
  type KeyPair,
  readKeyFile,
  saveKeyPair,
} from "./keys.ts";
import {
  decodeTrailers,
  encodeTrailer,
  MAX_TRAILERS,
  type SignatureTrailer,
  signedMessage,
  TRAILER_SIZE,
} from "./trailer.ts";
import { expectArchive, expectOptions, expectString } from "../args.ts";

export { generateKeyPair, type KeyPair, readKeyFile, saveKeyPair };

export interface SignResult {
  /** Hex of the signing key's 8-byte id. */
  keyId: string;
  /** True when the trailers were rewritten (this key's replaced, or others dropped with
   * `only`), false when a signature was appended. */
  replaced: boolean;
  /** Number of signature trailers the file now carries. */
  signatures: number;
}

/** What verification found; `ok` only when the archive is intact and signed by the key. */
export type VerifyStatus =
  | "ok"
  | "unsigned" // no signature trailer at all
  | "other-key" // signed, but not by this key
  | "bad-signature" // this key's signature does not match the archive
  | "bad-trailer" // a trailer is damaged or malformed (checksum, size, fields)
  | "corrupt"; // the archive itself fails its checks (header, index, a block, the parent)

export interface VerifyReport {
  ok: boolean;
  status: VerifyStatus;
  /** One line naming what failed (or what was verified). */
  message: string;
  /** Hex id of the verifying key. */
  keyId: string;
  /** Hex ids of the keys of every trailer found, in file order. */
  signers: string[];
  /** Counts of the full check; null with `fast` or when verification stopped earlier. */
  check: CheckReport | null;
}

export interface VerifyOptions {
  /** Check the signature against the header only; skip reading every block (and the parent). */
  fast?: boolean;
  /** The password of an encrypted archive, for the full check (`fast` needs none). */
  password?: string;
  /** Bytes checked so far of the full check, as `check` reports them. */
  onProgress?: (done: number, total: number) => void;
  /**
   * How a path given as a string, and the parents of a thin archive, are opened (default: as
   * local files). The command line passes one that also reads http(s) URLs.
   */
  openSource?: SourceOpener;
}

const short = (id: Uint8Array | string) => typeof id === "string" ? id : toHex(id);

/** Reads and decodes the trailers of a file whose archive proper ends at `archiveEnd`. */
async function readTrailers(src: ByteSource, archiveEnd: number): Promise<SignatureTrailer[]> {
  const tail = src.size - archiveEnd;
  if (tail < 0 || tail > MAX_TRAILERS * TRAILER_SIZE || tail % TRAILER_SIZE !== 0) {
    throw new HexzError(
      "signature",
      `${tail} bytes after the archive end are not 0..${MAX_TRAILERS} signature trailers ` +
        `of ${TRAILER_SIZE} bytes`,
    );
  }
  const trailers = decodeTrailers(await readExact(src, archiveEnd, tail));
  trailers.forEach((t, i) => {
    if (!equalBytes(t.keyId, keyIdOf(t.publicKey))) {
      throw new HexzError(
        "signature",
        `signature trailer ${i + 1}: key id does not match its public key`,
      );
    }
  });
  return trailers;
}

export interface SignOptions {
  /**
   * What is checked before signing, so a damaged archive is not vouched for: "index" (the
   * default: header, master record, sections and every index page against their hashes; for an
   * encrypted archive opened without `password`, its header), "full" (every block as well,
   * parents included, as `hexz check`), or "none" (the header only).
   */
  check?: "none" | "index" | "full";
  /** The password of an encrypted archive, for the checks beyond its header. */
  password?: string;
  /** Keep only this key's signature: every other trailer is dropped, damaged ones included. */
  only?: boolean;
  /** Bytes checked so far of a "full" check, as `check` reports them. */
  onProgress?: (done: number, total: number) => void;
}

/** Refuses to sign an archive that fails the checks `check` asks for. */
async function checkBeforeSigning(path: string, opts: SignOptions): Promise<void> {
  const check = opts.check ?? "index";
  if (check === "none") return;
  let a: Archive | null = null;
  try {
    a = await openForVerify(path, check === "index", opts.password, fileSource);
    if (check === "full") {
      await checkArchive(a, { onProgress: opts.onProgress });
    } else if (!a.header.encryption || a.keys) {
      for (const kind of ["dictionary", "metadata", "fileTable"] as const) await a.section(kind);
      for (let i = 0; i < a.pages.length; i++) await a.page(i);
    }
  } catch (e) {
    if (isVerdict(e)) {
      throw new HexzError(e.code, `refusing to sign ${path}: ${e.message}`, { cause: e });
    }
    throw e;
  } finally {
    a?.close();
  }
}

/**
 * Signs the archive at `path` with a PKCS#8 PEM Ed25519 key, after checking it (see
 * SignOptions.check). A new key's signature is appended (one write, then fsync); signing again
 * with a key that already signed replaces its trailer, and `only` drops all others: the archive
 * proper and the kept trailers are copied to a temporary file that is renamed into place, so a
 * crash leaves either the old file or the new one.
 */
export async function signArchive(
  path: string,
  privatePem: string,
  opts: SignOptions = {},
): Promise<SignResult> {
  expectString(path, "signArchive");
  expectString(privatePem, "signArchive: private key", "a PEM string");
  expectOptions(opts, "signArchive: options");
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
    // The signature is written into the file: a URL is not a file this can rewrite.
    throw new HexzError("usage", `${path}: only a local file can be signed (download it first)`);
  }
  const key = await importPrivateKey(privatePem);
  await checkBeforeSigning(path, opts);
  const src = await fileSource(path);
  let header: Header;
  let trailers: SignatureTrailer[];
  let mode: number;
  try {
    if (src.size < HEADER_SIZE) throw new HexzError("format", "not a hexz archive (too short)");
    header = decodeHeader(await src.read(0, HEADER_SIZE), src.size);
    if (opts.only) {
      trailers = [];
    } else {
      try {
        trailers = await readTrailers(src, header.archiveEnd);
      } catch (e) {
        if (e instanceof HexzError && e.code === "signature") {
          throw new HexzError(
            "signature",
            `${e.message} (sign with --only to replace every trailer with this key's)`,
          );
        }
        throw e;
      }
    }
    mode = ((await Deno.stat(path)).mode ?? 0o644) & 0o7777;
  } catch (e) {
    src.close();
    if (e instanceof HexzError) throw new HexzError(e.code, `${path}: ${e.message}`, { cause: e });
    throw e;
  }
  const message = signedMessage(header);
  const signature = new Uint8Array(await crypto.subtle.sign("Ed25519", key.key, message));
  const trailer = encodeTrailer({ keyId: key.keyId, signature, publicKey: key.publicKey });
  const others = trailers.filter((t) => !equalBytes(t.publicKey, key.publicKey));
  // With `only`, whatever followed the archive (trailers, damaged or not) is replaced.
  const replaced = others.length !== trailers.length ||
    (!!opts.only && src.size !== header.archiveEnd);
  if (!replaced && trailers.length >= MAX_TRAILERS) {
    src.close();
    throw new HexzError("signature", `${path}: already has ${MAX_TRAILERS} signatures`);
  }
  try {
    if (!replaced) {
      await appendAt(path, src.size, trailer);
    } else {
      await rewriteTail(
        src,
        path,
        header.archiveEnd,
        [...others.map(encodeTrailer), trailer],
        mode,
      );
    }
  } finally {
    src.close();
  }
  return { keyId: toHex(key.keyId), replaced, signatures: others.length + 1 };
}

async function appendAt(path: string, at: number, bytes: Uint8Array): Promise<void> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { write: true });
  } catch (e) {
    throw new HexzError("io", `${path}: cannot open for writing: ${osReason(e)}`);
  }
  try {
    await f.seek(at, Deno.SeekMode.Start);
    await writeAll(f, bytes, path);
    await f.sync();
  } catch (e) {
    throw new HexzError("io", `${path}: cannot append the signature: ${osReason(e)}`);
  } finally {
    f.close();
  }
}

/** Copies [0, archiveEnd) to a temporary file, appends `tail`, and renames it over `path`. */
async function rewriteTail(
  src: ByteSource,
  path: string,
  archiveEnd: number,
  tail: Uint8Array[],
  mode: number,
): Promise<void> {
  const out = await createAtomicFile(path, true);
  try {
    const piece = 8 * 1024 * 1024;
    for (let pos = 0; pos < archiveEnd; pos += piece) {
      await writeAll(out.file, await src.read(pos, Math.min(piece, archiveEnd - pos)), path);
    }
    for (const t of tail) await writeAll(out.file, t, path);
    await Deno.chmod(out.tempPath, mode);
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
}

/** Opens `path` as `open` in mod.ts does: parents found and verified, dictionaries loaded. */
async function openForVerify(
  path: string,
  fast: boolean,
  password: string | undefined,
  opener: SourceOpener,
): Promise<Archive> {
  const opts: OpenOptions = { loadDictionary: createZstdDictCodec, password };
  opts.resolveParent = parentResolver(opener, opts);
  const a = await openArchive(await opener(path), opts);
  return fast ? a : await openParents(a);
}

/** Errors that describe the archive (a verdict), as opposed to failures to run at all. */
function isVerdict(e: unknown): e is HexzError {
  return e instanceof HexzError &&
    (e.code === "corrupt" || e.code === "format" || e.code === "parent");
}

/** A verdict's line: a parent missing or replaced is said as such, not as damaged data. */
function corruptMessage(e: HexzError): string {
  return e.code === "parent" ? e.message : `archive data corrupt: ${e.message}`;
}

/**
 * Verifies that an archive (a path or an open Archive, whose source must span the whole file)
 * carries a valid signature by the SPKI PEM Ed25519 key `publicPem` and, unless `fast`, that
 * every record and block matches its hash (the full `checkArchive`, parents included). Returns
 * a report naming the first failure; throws only for unusable inputs (bad key, missing file).
 */
export async function verifyArchive(
  input: string | Archive,
  publicPem: string,
  opts: VerifyOptions = {},
): Promise<VerifyReport> {
  if (typeof input !== "string") expectArchive(input, "verifyArchive");
  expectString(publicPem, "verifyArchive: public key", "a PEM string");
  expectOptions(opts, "verifyArchive: options");
  const vk = await importPublicKey(publicPem);
  const report: VerifyReport = {
    ok: false,
    status: "corrupt",
    message: "",
    keyId: toHex(vk.keyId),
    signers: [],
    check: null,
  };
  const fail = (status: VerifyStatus, message: string) => ({ ...report, status, message });
  let a: Archive;
  try {
    a = typeof input === "string"
      ? await openForVerify(input, !!opts.fast, opts.password, opts.openSource ?? fileSource)
      : input;
  } catch (e) {
    if (isVerdict(e)) return fail("corrupt", corruptMessage(e));
    throw e;
  }
  try {
    let trailers: SignatureTrailer[];
    try {
      trailers = await readTrailers(a.source, a.header.archiveEnd);
    } catch (e) {
      if (e instanceof HexzError && e.code === "signature") {
        return fail("bad-trailer", `signature trailer damaged: ${e.message}`);
      }
      throw e;
    }
    report.signers = trailers.map((t) => toHex(t.keyId));
    if (!trailers.length) return fail("unsigned", "no signature");
    const mine = trailers.find((t) => equalBytes(t.publicKey, vk.publicKey));
    if (!mine) {
      return fail(
        "other-key",
        `no signature by key ${report.keyId}: signed by another key (${
          report.signers.map(short).join(", ")
        })`,
      );
    }
    let good = false;
    try {
      const key = await importRawPublicKey(mine.publicKey);
      good = await crypto.subtle.verify("Ed25519", key, mine.signature, signedMessage(a.header));
    } catch {
      good = false; // a malformed signature or key is simply not valid
    }
    if (!good) {
      return fail(
        "bad-signature",
        `bad signature by key ${report.keyId}: the archive is not the one that was signed`,
      );
    }
    if (!opts.fast) {
      try {
        report.check = await checkArchive(a, { onProgress: opts.onProgress });
      } catch (e) {
        if (isVerdict(e)) return fail("corrupt", corruptMessage(e));
        throw e;
      }
    }
    return {
      ...report,
      ok: true,
      status: "ok",
      message: opts.fast
        ? `good signature by key ${report.keyId} (header only: blocks not read)`
        : `good signature by key ${report.keyId}; ${report.check!.blocks} ${
          report.check!.blocks === 1 ? "block" : "blocks"
        } verified`,
    };
  } finally {
    if (typeof input === "string") a.close();
  }
}
