/**
 * Reading a tar stream entry by entry, without extracting it: ustar, GNU (long names `L` and
 * long link names `K`, base-256 numbers) and PAX (`x` per entry, `g` global: path, linkpath,
 * size, mtime, uid, gid, uname, gname, and extended attributes as `SCHILY.xattr.NAME`, which
 * GNU tar --xattrs writes). Member names are made relative as GNU tar makes them
 * on extraction (leading `/` and `.` components dropped); a `..` component is refused. What
 * the file table cannot hold (sparse files, multi-volume parts) is refused with the entry's
 * name. See docs/TAR.md.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import type { SequentialInput } from "../chunk/split.ts";
import type { ByteReader } from "./byte_reader.ts";
import { BLOCK, decodeHeader, isZeroBlock, type RawHeader } from "./header.ts";
import { decodePax, paxInteger, paxTimeMs } from "./pax.ts";

export type TarEntryType =
  | "file"
  | "dir"
  | "symlink"
  | "hardlink"
  | "chardev"
  | "blockdev"
  | "fifo";

export interface TarEntry {
  /** The member name as the archive gives it (for messages). */
  name: string;
  /** The name made relative (no leading `/`, no empty or `.` components); "" for the root. */
  path: string;
  type: TarEntryType;
  /** Permission bits (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtimeMs: number;
  /** Content bytes (regular files; 0 for the rest). */
  size: number;
  /** A symlink's target as stored; a hard link's target made relative like `path`. */
  target: string;
  /** Device number (character and block devices; 0 for the rest). */
  major: number;
  minor: number;
  /** Extended attributes by name (PAX `SCHILY.xattr.*`), in the order the tar gives them. */
  xattrs: Map<string, Uint8Array>;
  /** The content, `size` bytes (valid until the next entry is asked for). */
  content: SequentialInput;
}

/** Largest extended header (PAX records, GNU long name) read into memory. */
const MAX_META = 1024 * 1024;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A member name as errors show it: a hostile one may be megabytes long. */
export function shortName(name: string): string {
  return name.length > 200 ? `${name.slice(0, 197)}...` : name;
}

function text(b: Uint8Array, what: string): string {
  try {
    return utf8.decode(b);
  } catch {
    throw new HexzError("unsupported", `${what} is not valid UTF-8 (archives keep UTF-8 names)`);
  }
}

/**
 * `name` as GNU tar extracts it: leading `/` removed, empty and `.` components dropped; a `..`
 * component is refused (GNU tar skips such a member and fails at the end; converting
 * without it would lose data silently).
 */
export function memberPath(name: string, what: string): string {
  const parts = name.split("/").filter((c) => c !== "" && c !== ".");
  if (parts.includes("..")) {
    throw new HexzError("unsupported", `${what}: member name contains '..' (refused, as tar does)`);
  }
  return parts.join("/");
}

const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "5": "dir",
  "3": "chardev",
  "4": "blockdev",
  "6": "fifo",
};

const REFUSED: Record<string, string> = {
  "S": "a GNU sparse file",
  "M": "a multi-volume continuation",
  "D": "a GNU incremental directory listing",
};

/**
 * The entries of the tar read by `r`; `file` names it in errors. Each entry's content must be
 * read (or not) before the next is asked for; what is left of it is skipped.
 */
export async function* readTar(r: ByteReader, file: string): AsyncGenerator<TarEntry> {
  const truncated = (where: string) =>
    new HexzError("corrupt", `${file}: truncated ${where} (at byte ${r.position})`);
  let global = new Map<string, string>();
  let pax: Map<string, string> | null = null;
  const globalXattrs = new Map<string, Uint8Array>();
  let paxXattrs = new Map<string, Uint8Array>();
  let longName: Uint8Array | null = null;
  let longLink: Uint8Array | null = null;
  const readMeta = async (h: RawHeader, kind: string) => {
    if (h.size > MAX_META) {
      throw new HexzError("unsupported", `${file}: ${kind} of ${h.size} bytes is too large`);
    }
    const data = await r.readExact(h.size);
    if (data.length < h.size) throw truncated(`in a ${kind}`);
    const pad = (BLOCK - (h.size % BLOCK)) % BLOCK;
    if ((await r.skip(pad)) < pad) throw truncated(`in a ${kind}`);
    return data.slice();
  };
  for (;;) {
    const at = r.position;
    const block = await r.readExact(BLOCK);
    if (block.length === 0) {
      throw new HexzError(
        "corrupt",
        `${file}: truncated: ends at byte ${at} without the end-of-archive blocks`,
      );
    }
    if (block.length < BLOCK) throw truncated("in a header");
    if (isZeroBlock(block)) {
      if (pax || longName || longLink) throw truncated("after an extended header");
      return; // the end-of-archive marker; whatever follows is padding
    }
    let h: RawHeader;
    try {
      h = decodeHeader(block);
    } catch (e) {
      if (e instanceof HexzError) {
        throw new HexzError(e.code, `${file}: header at byte ${at}: ${e.message}`);
      }
      throw e;
    }
    const t = h.typeflag;
    if (t === "x" || t === "g") {
      let records: Map<string, string>;
      const xattrs = t === "g" ? globalXattrs : paxXattrs;
      try {
        records = decodePax(await readMeta(h, "PAX header"), xattrs);
      } catch (e) {
        if (e instanceof HexzError && !e.message.startsWith(file)) {
          throw new HexzError(e.code, `${file}: at byte ${at}: ${e.message}`);
        }
        throw e;
      }
      if (t === "g") global = new Map([...global, ...records]);
      else pax = new Map([...(pax ?? []), ...records]);
      continue;
    }
    if (t === "L" || t === "K") {
      const data = await readMeta(h, "GNU long name");
      const z = data.indexOf(0);
      if (t === "L") longName = z < 0 ? data : data.subarray(0, z);
      else longLink = z < 0 ? data : data.subarray(0, z);
      continue;
    }
    const records = new Map([...global, ...(pax ?? [])]);
    const name = records.get("path") ?? text(longName ?? h.name, `${file}: name at byte ${at}`);
    // Named in errors, shortened: a hostile name may be megabytes long.
    const what = `${file}: ${
      JSON.stringify(name.length > 200 ? `${name.slice(0, 197)}...` : name)
    }`;
    let type: TarEntryType | undefined = TYPES[t];
    if (type === "file" && h.format === "v7" && name.endsWith("/")) type = "dir";
    if (t === "V") {
      // A volume label (GNU): not a member; GNU tar does not extract it.
      await r.skip(h.size + ((BLOCK - (h.size % BLOCK)) % BLOCK));
      pax = longName = longLink = null;
      paxXattrs = new Map();
      continue;
    }
    if (!type) {
      const refused = REFUSED[t];
      throw new HexzError(
        "unsupported",
        `${what}: ${refused ?? `unknown entry type '${t}'`} cannot be converted`,
      );
    }
    if ([...records.keys()].some((k) => k.startsWith("GNU.sparse."))) {
      throw new HexzError("unsupported", `${what}: a PAX sparse file cannot be converted`);
    }
    const num = (key: string, header: number) =>
      records.has(key) ? paxInteger(records.get(key)!, `${what}: ${key}`) : header;
    const size = num("size", h.size);
    const rawTarget = records.get("linkpath") ??
      text(longLink ?? h.linkname, `${what}: link name`);
    const entry: TarEntry = {
      name,
      path: memberPath(name, what),
      type,
      mode: h.mode & 0o7777,
      uid: num("uid", h.uid),
      gid: num("gid", h.gid),
      uname: records.get("uname") ?? h.uname,
      gname: records.get("gname") ?? h.gname,
      mtimeMs: records.has("mtime")
        ? paxTimeMs(records.get("mtime")!, `${what}: mtime`)
        : h.mtime * 1000,
      size: type === "file" ? size : 0,
      target: type === "hardlink" ? memberPath(rawTarget, `${what}: link target`) : rawTarget,
      major: h.devmajor,
      minor: h.devminor,
      xattrs: new Map([...globalXattrs, ...paxXattrs]),
      content: { read: () => Promise.resolve(null) },
    };
    pax = longName = longLink = null;
    paxXattrs = new Map();
    if (entry.uid > 0xffffffff || entry.gid > 0xffffffff) {
      throw new HexzError("unsupported", `${what}: uid or gid does not fit in 32 bits`);
    }
    if (entry.major > 0xffffffff || entry.minor > 0xffffffff) {
      throw new HexzError("unsupported", `${what}: device number does not fit in 32 bits`);
    }
    let left = size;
    if (type === "file") {
      entry.content = {
        async read(into) {
          if (left === 0) return null;
          const n = await r.read(into.subarray(0, Math.min(into.length, left)));
          if (n === 0) throw truncated(`in the middle of ${JSON.stringify(name)}`);
          left -= n;
          return n;
        },
      };
    }
    yield entry;
    // Whatever the consumer left of the content (links may carry some too), then padding.
    const rest = left + ((BLOCK - (size % BLOCK)) % BLOCK);
    if ((await r.skip(rest)) < rest) throw truncated(`in the middle of ${JSON.stringify(name)}`);
  }
}
