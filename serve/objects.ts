/**
 * What the network servers publish from an archive, and how one object is answered over HTTP.
 *
 * An archive publishes its non-empty streams as `disk` and `memory` and, for a directory
 * archive, each regular file of its file table as `files/<path>`. Each object has a size, a
 * strong entity tag (the archive's root hash plus the key, so it changes exactly when the
 * content can), the archive's creation time as its modification time, and a ranged read.
 * `objectResponse` applies the HTTP rules (RFC 9110) for GET and HEAD of such an object:
 * `If-None-Match`, `If-Range`, single byte ranges (`a-b`, `a-`, `-n`); a request for several
 * ranges is answered with the whole object, which RFC 9110 allows.
 *
 * @module
 */
import { type Archive, rootHashHex } from "../core/read/archive.ts";
import { fileTable, readFile } from "../core/read/files.ts";

/** One published object: a stream, or a file of a directory archive. */
export interface ArchiveObject {
  /** `disk`, `memory` or `files/<path>`. */
  readonly key: string;
  readonly size: number;
  /** Quoted strong entity tag, ready for the `ETag` header. */
  readonly etag: string;
  readonly lastModified: Date;
  /** Exactly `length` bytes at `offset`. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** The objects of one archive, sorted by the UTF-8 bytes of their keys (S3 listing order). */
export interface ObjectCatalog {
  readonly objects: readonly ArchiveObject[];
  get(key: string): ArchiveObject | undefined;
}

const enc = new TextEncoder();

/** Compares two keys by their UTF-8 bytes, the order S3 lists keys in. */
export function compareKeys(a: string, b: string): number {
  const x = enc.encode(a);
  const y = enc.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

/** `key` with every byte that an entity tag may not hold written as `%XX`. */
function etagSafe(key: string): string {
  let out = "";
  for (const b of enc.encode(key)) {
    out += b > 0x20 && b < 0x7f && b !== 0x22 && b !== 0x25
      ? String.fromCharCode(b)
      : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Lists what `a` publishes: non-empty streams and, for directory archives, regular files. */
export async function archiveCatalog(a: Archive): Promise<ObjectCatalog> {
  const root = rootHashHex(a);
  const lastModified = new Date(a.header.createdAtMs);
  const objects: ArchiveObject[] = [];
  const add = (key: string, size: number, read: ArchiveObject["read"]) =>
    objects.push({ key, size, etag: `"${root}-${etagSafe(key)}"`, lastModified, read });
  for (const stream of ["disk", "memory"] as const) {
    if (a.size(stream) > 0) add(stream, a.size(stream), (o, n) => a.read(stream, o, n));
  }
  for (const e of (await fileTable(a)) ?? []) {
    if (e.type === "file") add(`files/${e.path}`, e.size, (o, n) => readFile(a, e, o, n));
  }
  objects.sort((x, y) => compareKeys(x.key, y.key));
  const byKey = new Map(objects.map((o) => [o.key, o]));
  return { objects, get: (key) => byKey.get(key) };
}

/** What a `Range` header asks of an object of `size` bytes. */
export type RangeRequest =
  | { kind: "whole" }
  | { kind: "part"; start: number; end: number } // inclusive end, as in Content-Range
  | { kind: "unsatisfiable" };

/**
 * Interprets a `Range` header. Absent, malformed, non-byte and multi-range headers ask for the
 * whole object (a server may ignore them); a single range that starts at or past the end, or
 * an empty suffix, cannot be satisfied.
 */
export function parseRange(header: string | null, size: number): RangeRequest {
  if (header === null) return { kind: "whole" };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === "" && m[2] === "")) return { kind: "whole" };
  if (m[1] === "") {
    const n = Number(m[2]);
    if (!Number.isSafeInteger(n)) return { kind: "whole" };
    if (n === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "part", start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const last = m[2] === "" ? Infinity : Number(m[2]);
  if (!Number.isSafeInteger(start) || !(last >= start)) return { kind: "whole" };
  if (start >= size) return { kind: "unsatisfiable" };
  return { kind: "part", start, end: Math.min(last, size - 1) };
}

/** Whether an `If-None-Match` value names `etag` (weak comparison, as RFC 9110 says). */
export function etagMatches(header: string | null, etag: string): boolean {
  if (header === null) return false;
  if (header.trim() === "*") return true;
  const opaque = (t: string) => t.trim().replace(/^W\//, "");
  return header.split(",").some((t) => opaque(t) === opaque(etag));
}

/** Bytes read from an object per piece of a streamed body. */
export const PIECE_BYTES = 1024 * 1024;

/**
 * A body that reads `length` bytes at `start` of `obj` one piece at a time, as the client
 * takes them: at most one piece waits in the stream, so no object is ever held whole. A read
 * that fails errors the stream, which ends the response early; `onError` hears of it.
 */
export function objectStream(
  obj: ArchiveObject,
  start: number,
  length: number,
  onError?: (e: unknown) => void,
  first?: Uint8Array,
): ReadableStream<Uint8Array> {
  let pos = start;
  const end = start + length;
  return new ReadableStream<Uint8Array>({
    start(c) {
      if (!first) return;
      pos += first.length;
      c.enqueue(first);
      if (pos >= end) c.close();
    },
    async pull(c) {
      const n = Math.min(PIECE_BYTES, end - pos);
      try {
        const data = await obj.read(pos, n);
        pos += n;
        c.enqueue(data);
        if (pos >= end) c.close();
      } catch (e) {
        if (e !== null && typeof e === "object") reported.add(e);
        onError?.(e);
        c.error(e);
      }
    },
  });
}

/** Read errors a body stream has already reported (the server hears of them again). */
const reported = new WeakSet<object>();

/** Whether `e` was reported by the body stream that failed with it. */
export function alreadyReported(e: unknown): boolean {
  return e !== null && typeof e === "object" && reported.has(e);
}

export interface ObjectResponseOptions {
  /** Headers added to every answer (request ids, server name). */
  headers?: Record<string, string>;
  /** The answer to an unsatisfiable range; `Content-Range: bytes *\/SIZE` is added to it. */
  unsatisfiable?: () => Response;
  /** Hears of a read that failed while a body was being sent. */
  onError?: (e: unknown) => void;
}

/**
 * Answers a GET or HEAD of `obj`: 200, 206, 304 or 416, with the body streamed. The first
 * piece (PIECE_BYTES) is read before the status is sent, so a range that small is either
 * answered whole or fails as an error (rejects: the server answers 500); a later piece that
 * fails cuts the body short of its Content-Length.
 */
export async function objectResponse(
  req: Request,
  obj: ArchiveObject,
  opts: ObjectResponseOptions = {},
): Promise<Response> {
  const headers = new Headers({
    "accept-ranges": "bytes",
    "etag": obj.etag,
    "last-modified": obj.lastModified.toUTCString(),
    ...opts.headers,
  });
  if (etagMatches(req.headers.get("if-none-match"), obj.etag)) {
    return new Response(null, { status: 304, headers });
  }
  let range = parseRange(req.headers.get("range"), obj.size);
  // If-Range: send the part only if the client's copy is this one (strong comparison).
  const ifRange = req.headers.get("if-range");
  if (ifRange !== null && ifRange.trim() !== obj.etag) range = { kind: "whole" };
  if (range.kind === "unsatisfiable") {
    const res = opts.unsatisfiable?.() ?? new Response(null, { status: 416 });
    for (const [k, v] of headers) res.headers.set(k, v);
    res.headers.set("content-range", `bytes */${obj.size}`);
    return req.method === "HEAD" ? new Response(null, res) : res;
  }
  const [start, end] = range.kind === "part" ? [range.start, range.end] : [0, obj.size - 1];
  const length = end - start + 1;
  headers.set("content-type", "application/octet-stream");
  headers.set("content-length", String(length));
  if (range.kind === "part") headers.set("content-range", `bytes ${start}-${end}/${obj.size}`);
  const body = req.method === "HEAD" || length === 0 ? null : objectStream(
    obj,
    start,
    length,
    opts.onError,
    await obj.read(start, Math.min(PIECE_BYTES, length)),
  );
  return new Response(body, { status: range.kind === "part" ? 206 : 200, headers });
}
