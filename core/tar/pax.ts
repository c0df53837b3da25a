/**
 * PAX extended header records (POSIX.1-2001): `"%d %s=%s\n"`, the decimal length counting the
 * whole record, its own digits included. Decoding checks every length; encoding finds the
 * length that counts itself.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { concatBytes } from "../format/bytes.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });
const enc = new TextEncoder();

/** PAX key prefix of an extended attribute (star's, which GNU tar --xattrs writes and reads);
 * the value is the attribute's bytes as they are, binary included. */
export const XATTR_KEY = "SCHILY.xattr.";

/**
 * The records of a PAX header's content, in order (a later key replaces an earlier one).
 * Extended attributes (`SCHILY.xattr.NAME`), whose values are bytes, go to `xattrs` by name
 * (left out when it is not given).
 */
export function decodePax(
  data: Uint8Array,
  xattrs?: Map<string, Uint8Array>,
): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    // Trailing NUL padding (some writers leave it) ends the records.
    if (data[at] === 0) break;
    let len = 0, i = at;
    while (i < data.length && data[i] >= 0x30 && data[i] <= 0x39 && i - at < 12) {
      len = len * 10 + data[i] - 0x30;
      i++;
    }
    if (i === at || data[i] !== 0x20 || len <= i - at + 1 || at + len > data.length) {
      throw new HexzError("corrupt", `PAX header: bad record length at byte ${at}`);
    }
    const end = at + len;
    if (data[end - 1] !== 0x0a) {
      throw new HexzError("corrupt", `PAX header: record at byte ${at} does not end in a newline`);
    }
    const eqAt = data.subarray(i + 1, end - 1).indexOf(0x3d);
    const keyBytes = eqAt > 0 ? data.subarray(i + 1, i + 1 + eqAt) : null;
    if (keyBytes && enc.encode(XATTR_KEY).every((c, k) => keyBytes[k] === c)) {
      let name: string;
      try {
        name = utf8.decode(keyBytes.subarray(XATTR_KEY.length));
      } catch {
        throw new HexzError("corrupt", `PAX header: record at byte ${at} is not UTF-8`);
      }
      xattrs?.set(name, data.slice(i + 2 + eqAt, end - 1));
      at = end;
      continue;
    }
    let text: string;
    try {
      text = utf8.decode(data.subarray(i + 1, end - 1));
    } catch {
      throw new HexzError("corrupt", `PAX header: record at byte ${at} is not UTF-8`);
    }
    const eq = text.indexOf("=");
    if (eq <= 0) throw new HexzError("corrupt", `PAX header: record at byte ${at} has no key`);
    out.set(text.slice(0, eq), text.slice(eq + 1));
    at = end;
  }
  return out;
}

/** One record, `"<len> key=value\n"` (a value of bytes is written as it is). */
function record(key: string, value: string | Uint8Array): Uint8Array {
  const body = concatBytes(
    enc.encode(` ${key}=`),
    typeof value === "string" ? enc.encode(value) : value,
    enc.encode("\n"),
  );
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return concatBytes(enc.encode(String(len)), body);
}

/** A PAX header's content for `records`. */
export function encodePax(records: [string, string | Uint8Array][]): Uint8Array {
  return concatBytes(...records.map(([k, v]) => record(k, v)));
}

/** A PAX decimal integer (`size`, `uid`, `gid`); `what` names it in errors. */
export function paxInteger(v: string, what: string): number {
  if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new HexzError("corrupt", `PAX header: ${what} ${JSON.stringify(v)} is not a number`);
  }
  return Number(v);
}

/** A PAX time (`mtime`): seconds, with an optional sign and fraction, as milliseconds. */
export function paxTimeMs(v: string, what: string): number {
  const m = /^(-?)(\d{1,15})(?:\.(\d+))?$/.exec(v);
  if (!m) throw new HexzError("corrupt", `PAX header: ${what} ${JSON.stringify(v)} is not a time`);
  const ms = Number(m[2]) * 1000 + Number((m[3] ?? "").padEnd(3, "0").slice(0, 3));
  return m[1] ? -ms : ms;
}
