/**
 * An archive as one read-only, path-style S3 bucket, enough for S3 clients to list and read
 * it: ListBuckets (`GET /`), HeadBucket, GetBucketLocation, ListObjectsV2 (`list-type=2`) and
 * ListObjects (v1) with prefix, delimiter, max-keys, pagination and `encoding-type=url`,
 * GetObject with ranges and HeadObject. Keys are `disk`, `memory` and `files/<path>`. Requests
 * are anonymous: an `Authorization` header is accepted and ignored. Errors are S3 XML
 * (`<Error><Code>NoSuchKey</Code>...`).
 *
 * @module
 */
import { HexzError } from "../core/errors.ts";
import { type ArchiveObject, compareKeys, type ObjectCatalog, objectResponse } from "./objects.ts";

const NS = "http://s3.amazonaws.com/doc/2006-03-01/";
const MAX_KEYS = 1000;

/** S3's rules for bucket names: 3-63 of a-z 0-9 . -, starting and ending alphanumeric. */
export function checkBucketName(name: string): string {
  if (
    !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) || name.includes("..") ||
    /^\d+\.\d+\.\d+\.\d+$/.test(name)
  ) {
    throw new HexzError(
      "usage",
      `'${name}' is not a valid bucket name (3-63 characters of a-z, 0-9, '.', '-')`,
    );
  }
  return name;
}

/** The bucket name for an archive: its file name without `.hxz`, made a valid bucket name. */
export function defaultBucketName(sourceName: string): string {
  const base = sourceName.replace(/[?#].*$/, "").replace(/\/+$/, "").split("/").pop() ?? "";
  let name = base.replace(/\.hxz$/i, "").toLowerCase()
    .replace(/[^a-z0-9.-]+/g, "-")
    .replace(/\.{2,}/g, ".")
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "")
    .slice(0, 63)
    .replace(/[^a-z0-9]+$/, "");
  if (!name) name = "hexz";
  if (name.length < 3 || /^\d+\.\d+\.\d+\.\d+$/.test(name)) name = `${name}-hxz`;
  return name;
}

function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
    // XML 1.0 cannot carry most control characters even as references: write them as U+FFFD.
    // deno-lint-ignore no-control-regex
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, "\ufffd");
}

function el(name: string, value: string | number | boolean): string {
  return `<${name}>${xmlEscape(String(value))}</${name}>`;
}

function xmlResponse(status: number, body: string, headers: Record<string, string>): Response {
  return new Response(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`, {
    status,
    headers: { ...headers, "content-type": "application/xml" },
  });
}

function requestId(): string {
  return crypto.randomUUID().replace(/-/g, "").slice(0, 16).toUpperCase();
}

/** The S3 error codes this server answers with, and their HTTP status. */
const ERRORS = {
  NoSuchKey: [404, "The specified key does not exist."],
  NoSuchBucket: [404, "The specified bucket does not exist."],
  InvalidRange: [416, "The requested range is not satisfiable."],
  InvalidArgument: [400, "Invalid argument."],
  InvalidURI: [400, "Could not parse the specified URI."],
  MethodNotAllowed: [405, "The specified method is not allowed against this resource."],
  NotImplemented: [
    501,
    "A header or query you provided implies functionality that is not implemented.",
  ],
  InternalError: [500, "We encountered an internal error. Please try again."],
} as const;

type ErrorCode = keyof typeof ERRORS;

/** Sub-resources of buckets and objects that a read-only archive does not have. */
const UNSUPPORTED = [
  "acl",
  "tagging",
  "policy",
  "cors",
  "lifecycle",
  "versioning",
  "versions",
  "uploads",
  "uploadId",
  "torrent",
  "attributes",
  "retention",
  "legal-hold",
  "object-lock",
  "website",
  "logging",
  "notification",
  "replication",
  "encryption",
];

/** An answer to one list request: keys and common prefixes in order, and where to go on. */
interface ListPage {
  contents: ArchiveObject[];
  prefixes: string[];
  truncated: boolean;
  /** The last key or common prefix returned: where the next page starts after. */
  last: string;
}

/** Lists `objects` after `after` under `prefix`, grouped by `delimiter`, at most `max` entries. */
export function listPage(
  objects: readonly ArchiveObject[],
  prefix: string,
  delimiter: string,
  after: string,
  max: number,
): ListPage {
  const page: ListPage = { contents: [], prefixes: [], truncated: false, last: "" };
  // A page that ended on a common prefix of this listing has returned every key under it;
  // any other `after` (a start-after of the client's, e.g. the prefix itself) is a place only.
  const afterIsCommonPrefix = delimiter !== "" && after.startsWith(prefix) &&
    after.length > prefix.length &&
    after.indexOf(delimiter, prefix.length) === after.length - delimiter.length;
  let count = 0;
  for (const o of objects) {
    if (!o.key.startsWith(prefix) || compareKeys(o.key, after) <= 0) continue;
    if (afterIsCommonPrefix && o.key.startsWith(after)) continue;
    let entry = o.key;
    if (delimiter) {
      const i = o.key.indexOf(delimiter, prefix.length);
      if (i >= 0) entry = o.key.slice(0, i + delimiter.length);
    }
    if (entry !== o.key && entry === page.prefixes[page.prefixes.length - 1]) continue;
    if (count === max) {
      page.truncated = max > 0;
      break;
    }
    if (entry === o.key) page.contents.push(o);
    else page.prefixes.push(entry);
    page.last = entry;
    count++;
  }
  return page;
}

function base64url(s: string): string {
  let bin = "";
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(s: string): string | null {
  try {
    const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
    return new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(bin, (c) => c.charCodeAt(0)),
    );
  } catch {
    return null;
  }
}

/** The request handler for one bucket holding the objects of `catalog`. */
export function s3Handler(
  catalog: ObjectCatalog,
  bucket: string,
  onError?: (e: unknown) => void,
): (req: Request) => Promise<Response> {
  return async (req) => {
    const id = requestId();
    const headers = { "x-amz-request-id": id, "server": "hexz" };
    const url = new URL(req.url);
    let resource = url.pathname;
    const error = (code: ErrorCode, extra: Record<string, string> = {}): Response => {
      const [status, message] = ERRORS[code];
      if (req.method === "HEAD") return new Response(null, { status, headers });
      const fields = Object.entries(extra).map(([k, v]) => el(k, v)).join("");
      return xmlResponse(
        status,
        `<Error>${el("Code", code)}${el("Message", message)}${fields}${el("Resource", resource)}${
          el("RequestId", id)
        }</Error>`,
        headers,
      );
    };
    try {
      resource = decodeURIComponent(url.pathname);
    } catch {
      return error("InvalidURI");
    }
    try {
      if (req.method !== "GET" && req.method !== "HEAD") {
        const r = error("MethodNotAllowed");
        r.headers.set("allow", "GET, HEAD"); // as RFC 9110 asks of a 405
        return r;
      }
      const q = url.searchParams;
      if (UNSUPPORTED.some((p) => q.has(p))) return error("NotImplemented");
      const slash = resource.indexOf("/", 1);
      const name = slash < 0 ? resource.slice(1) : resource.slice(1, slash);
      const key = slash < 0 ? "" : resource.slice(slash + 1);
      if (name === "") return listBuckets(req, bucket, catalog, headers);
      if (name !== bucket) return error("NoSuchBucket", { BucketName: name });
      if (key === "") {
        if (req.method === "HEAD") return new Response(null, { status: 200, headers });
        if (q.has("location")) {
          return xmlResponse(200, `<LocationConstraint xmlns="${NS}"/>`, headers);
        }
        return listObjects(q, bucket, catalog, headers, error);
      }
      const obj = catalog.get(key);
      if (!obj) return error("NoSuchKey", { Key: key, BucketName: bucket });
      return await objectResponse(req, obj, {
        headers,
        unsatisfiable: () => error("InvalidRange", { RangeRequested: req.headers.get("range")! }),
        onError,
      });
    } catch (e) {
      onError?.(e);
      return error("InternalError");
    }
  };
}

function listBuckets(
  req: Request,
  bucket: string,
  catalog: ObjectCatalog,
  headers: Record<string, string>,
): Response {
  if (req.method === "HEAD") return new Response(null, { status: 200, headers });
  const created = (catalog.objects[0]?.lastModified ?? new Date(0)).toISOString();
  return xmlResponse(
    200,
    `<ListAllMyBucketsResult xmlns="${NS}"><Owner>${el("ID", "hexz")}${
      el("DisplayName", "hexz")
    }</Owner><Buckets><Bucket>${el("Name", bucket)}${
      el("CreationDate", created)
    }</Bucket></Buckets></ListAllMyBucketsResult>`,
    headers,
  );
}

function listObjects(
  q: URLSearchParams,
  bucket: string,
  catalog: ObjectCatalog,
  headers: Record<string, string>,
  error: (code: ErrorCode, extra?: Record<string, string>) => Response,
): Response {
  const v2 = q.get("list-type") === "2";
  if (q.has("list-type") && !v2) return error("InvalidArgument", { ArgumentName: "list-type" });
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") ?? "";
  const encoding = q.get("encoding-type");
  if (encoding !== null && encoding !== "url") {
    return error("InvalidArgument", { ArgumentName: "encoding-type" });
  }
  const maxText = q.get("max-keys") ?? String(MAX_KEYS);
  if (!/^\d+$/.test(maxText)) return error("InvalidArgument", { ArgumentName: "max-keys" });
  const maxKeys = Math.min(Number(maxText), MAX_KEYS); // S3 caps it (1000) rather than refuse
  let after: string;
  const token = q.get("continuation-token");
  if (v2) {
    after = q.get("start-after") ?? "";
    if (token !== null) {
      const t = fromBase64url(token);
      if (t === null || t === "") {
        return error("InvalidArgument", { ArgumentName: "continuation-token" });
      }
      if (compareKeys(t, after) > 0) after = t;
    }
  } else {
    after = q.get("marker") ?? "";
  }
  const page = listPage(catalog.objects, prefix, delimiter, after, maxKeys);
  const enc = (s: string) => encoding === "url" ? encodeURIComponent(s).replace(/%2F/g, "/") : s;
  const parts: string[] = [el("Name", bucket), el("Prefix", enc(prefix))];
  if (delimiter) parts.push(el("Delimiter", enc(delimiter)));
  if (v2) {
    if (q.has("start-after")) parts.push(el("StartAfter", enc(q.get("start-after")!)));
    if (token !== null) parts.push(el("ContinuationToken", token));
    parts.push(el("KeyCount", page.contents.length + page.prefixes.length));
  } else {
    parts.push(el("Marker", enc(after)));
  }
  parts.push(el("MaxKeys", maxKeys));
  if (encoding) parts.push(el("EncodingType", encoding));
  parts.push(el("IsTruncated", page.truncated));
  if (page.truncated) {
    parts.push(
      v2 ? el("NextContinuationToken", base64url(page.last)) : el("NextMarker", enc(page.last)),
    );
  }
  for (const o of page.contents) {
    parts.push(
      `<Contents>${el("Key", enc(o.key))}${el("LastModified", o.lastModified.toISOString())}${
        el("ETag", o.etag)
      }${el("Size", o.size)}${el("StorageClass", "STANDARD")}</Contents>`,
    );
  }
  for (const p of page.prefixes) {
    parts.push(`<CommonPrefixes>${el("Prefix", enc(p))}</CommonPrefixes>`);
  }
  return xmlResponse(
    200,
    `<ListBucketResult xmlns="${NS}">${parts.join("")}</ListBucketResult>`,
    headers,
  );
}
