/**
 * The 512-byte tar header block, as POSIX ustar, GNU tar and PAX write it: decoding with every
 * field checked (checksum, octal or GNU base-256 numbers, UTF-8 names), and encoding ustar
 * headers. Extended headers (PAX records, GNU long names) are read in `reader.ts`.
 *
 * @module
 */
import { HexzError } from "../errors.ts";

export const BLOCK = 512;

/** A header as read from one block, before PAX or GNU long-name overrides. */
export interface RawHeader {
  /** Name bytes (ustar prefix joined with '/'), undecoded. */
  name: Uint8Array;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  typeflag: string;
  linkname: Uint8Array;
  uname: string;
  gname: string;
  /** Device number of a character or block device (typeflag 3 or 4); 0 for the rest. */
  devmajor: number;
  devminor: number;
  /** "ustar" (POSIX, with prefix), "gnu" (GNU magic), or "v7" (no magic). */
  format: "ustar" | "gnu" | "v7";
}

const dec = new TextDecoder("latin1");

/** Bytes up to the first NUL. */
function cstring(b: Uint8Array, at: number, len: number): Uint8Array {
  const f = b.subarray(at, at + len);
  const z = f.indexOf(0);
  return z < 0 ? f : f.subarray(0, z);
}

/**
 * A numeric field: octal digits (leading spaces, ending at NUL or space), or GNU base-256
 * (first byte 0x80 positive, 0xff negative). `what` names the field in errors.
 */
export function parseNumber(b: Uint8Array, at: number, len: number, what: string): number {
  const f = b.subarray(at, at + len);
  if (f[0] === 0x80 || f[0] === 0xff) {
    const negative = f[0] === 0xff;
    let v = 0n;
    for (let i = 1; i < f.length; i++) v = (v << 8n) | BigInt(negative ? f[i] ^ 0xff : f[i]);
    if (negative) v = -(v + 1n);
    const n = Number(v);
    if (!Number.isSafeInteger(n)) {
      throw new HexzError("corrupt", `${what} field is out of range`);
    }
    return n;
  }
  let i = 0;
  while (i < f.length && f[i] === 0x20) i++;
  let n = 0, digits = 0;
  for (; i < f.length && f[i] >= 0x30 && f[i] <= 0x37; i++, digits++) n = n * 8 + f[i] - 0x30;
  // What follows the digits may only be NULs and spaces.
  for (; i < f.length; i++) {
    if (f[i] !== 0 && f[i] !== 0x20) {
      throw new HexzError(
        "corrupt",
        `${what} field ${JSON.stringify(dec.decode(f).replace(/\0+$/, ""))} is not an octal number`,
      );
    }
  }
  if (digits === 0 && f.some((c) => c !== 0 && c !== 0x20)) {
    throw new HexzError("corrupt", `${what} field is not an octal number`);
  }
  return n;
}

/** The header checksum: the sum of all bytes with the checksum field taken as spaces
 * (unsigned, as POSIX says; `signed` as some old tars computed it). */
function checksum(b: Uint8Array, signed: boolean): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i];
    sum += signed && c > 127 ? c - 256 : c;
  }
  return sum;
}

/** Whether the block is all zeros (the end-of-archive marker). */
export function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** Decodes one header block; throws a `corrupt` error for a bad checksum or field. */
export function decodeHeader(b: Uint8Array): RawHeader {
  const stored = parseNumber(b, 148, 8, "checksum");
  if (stored !== checksum(b, false) && stored !== checksum(b, true)) {
    throw new HexzError("corrupt", "header checksum mismatch (not a tar archive, or damaged)");
  }
  const magic = dec.decode(b.subarray(257, 265));
  const format = magic === "ustar  \0" ? "gnu" : magic.startsWith("ustar\0") ? "ustar" : "v7";
  let name = cstring(b, 0, 100);
  const prefix = format === "ustar" ? cstring(b, 345, 155) : new Uint8Array(0);
  if (prefix.length) {
    const joined = new Uint8Array(prefix.length + 1 + name.length);
    joined.set(prefix);
    joined[prefix.length] = 0x2f;
    joined.set(name, prefix.length + 1);
    name = joined;
  }
  const ascii = (at: number, len: number) => dec.decode(cstring(b, at, len));
  return {
    name,
    mode: parseNumber(b, 100, 8, "mode"),
    uid: parseNumber(b, 108, 8, "uid"),
    gid: parseNumber(b, 116, 8, "gid"),
    size: parseNumber(b, 124, 12, "size"),
    mtime: parseNumber(b, 136, 12, "mtime"),
    typeflag: b[156] === 0 ? "0" : String.fromCharCode(b[156]),
    linkname: cstring(b, 157, 100),
    uname: format === "v7" ? "" : ascii(265, 32),
    gname: format === "v7" ? "" : ascii(297, 32),
    // Devices only (GNU tar leaves the fields empty for other entries).
    devmajor: format === "v7" || !"34".includes(String.fromCharCode(b[156]))
      ? 0
      : parseNumber(b, 329, 8, "devmajor"),
    devminor: format === "v7" || !"34".includes(String.fromCharCode(b[156]))
      ? 0
      : parseNumber(b, 337, 8, "devminor"),
    format,
  };
}

/** The largest value an octal field of `len` bytes holds (len - 1 digits and a NUL). */
export function octalMax(len: number): number {
  return 8 ** (len - 1) - 1;
}

function putOctal(b: Uint8Array, at: number, len: number, v: number) {
  const s = v.toString(8).padStart(len - 1, "0");
  for (let i = 0; i < len - 1; i++) b[at + i] = s.charCodeAt(i);
  b[at + len - 1] = 0;
}

/** What `encodeHeader` writes; names must already fit (see `writer.ts` for PAX). */
export interface HeaderFields {
  /** Name bytes, at most 100, or split with `prefix` (at most 155). */
  name: Uint8Array;
  prefix?: Uint8Array;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname?: Uint8Array;
  /** Devices (typeflag 3 and 4) only. */
  devmajor?: number;
  devminor?: number;
}

/** A POSIX ustar header block. Numbers must fit their octal fields. */
export function encodeHeader(h: HeaderFields): Uint8Array {
  const b = new Uint8Array(BLOCK);
  b.set(h.name.subarray(0, 100), 0);
  putOctal(b, 100, 8, h.mode);
  putOctal(b, 108, 8, h.uid);
  putOctal(b, 116, 8, h.gid);
  putOctal(b, 124, 12, h.size);
  putOctal(b, 136, 12, h.mtime);
  b[156] = h.typeflag.charCodeAt(0);
  if (h.linkname) b.set(h.linkname.subarray(0, 100), 157);
  b.set([0x75, 0x73, 0x74, 0x61, 0x72, 0, 0x30, 0x30], 257); // "ustar\0" "00"
  if (h.devmajor !== undefined) putOctal(b, 329, 8, h.devmajor);
  if (h.devminor !== undefined) putOctal(b, 337, 8, h.devminor);
  if (h.prefix) b.set(h.prefix.subarray(0, 155), 345);
  const sum = checksum(b, false);
  const s = sum.toString(8).padStart(6, "0");
  for (let i = 0; i < 6; i++) b[148 + i] = s.charCodeAt(i);
  b[154] = 0;
  b[155] = 0x20;
  return b;
}
