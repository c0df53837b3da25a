/**
 * A byte source over HTTP(S): an archive at a URL is read lazily with `Range` requests, so
 * opening it and reading a few bytes transfers only the header, the index pages and the
 * blocks asked for.
 *
 * - The size and entity tag come from a `HEAD` (or, where HEAD is refused or carries no
 *   length, a `GET` of `bytes=0-0`).
 * - Reads are widened to whole aligned blocks (`blockSize`, 64 KiB by default) kept in a small
 *   LRU cache, so adjacent small reads are served by one request; blocks that are missing and
 *   adjacent are fetched in one request; a read that continues where the last one ended
 *   fetches the next blocks too, doubling up to 1 MiB ahead.
 * - Concurrent reads of the same block share one request.
 * - Network errors, timeouts, 5xx answers and short bodies are retried with exponential
 *   backoff (a request that timed out, twice at most: a stalled server fails a read within
 *   about two timeouts); 4xx answers are not.
 * - Every answer is checked: status 206, `Content-Range` start, end and total, body length,
 *   no `Content-Encoding` (a compressed answer's bytes are not the file's), and an entity tag
 *   (or `Last-Modified`) equal to the first one seen; an answer without it, once the server has
 *   sent one, may be of another file. A file that changed while being read is an error, never
 *   a mix of two versions.
 * - Errors start with the URL (`URL: GET bytes=0-65535: HTTP 403 Forbidden`), once.
 *
 * @module
 */
import { HexzError } from "../core/errors.ts";
import type { ByteSource } from "../core/io/source.ts";
import { createLru } from "../core/read/lru.ts";
import { expectOptions, expectString } from "../core/args.ts";

export interface HttpSourceOptions {
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** Retries after a transient failure (default 4). */
  retries?: number;
  /** Alignment and cache unit of reads in bytes (default 64 KiB). */
  blockSize?: number;
  /** Size of the cache of fetched blocks in bytes (default 8 MiB). */
  cacheBytes?: number;
  /** Counts requests sent and body bytes received, added to as they happen. */
  stats?: { requests: number; bytes: number };
  /** Time allowed for one request, body included, in milliseconds (default 30 s). */
  timeoutMs?: number;
}

/** Bytes fetched ahead of a read at most, when reads are sequential. */
const MAX_AHEAD_BYTES = 1024 * 1024;
/** Bytes asked for in one request at most. */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;

/** A failure worth trying again: the network, the server's 5xx, a body cut short. */
class Transient extends Error {
  /** The server did not answer in time (not a quick failure). */
  slow = false;
}

/** Requests that timed out are tried this many times at most: a server that stalls on every
 * request then fails a read after two timeouts (about a minute), not after every retry. */
const SLOW_TRIES = 2;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** Reads a body of exactly `expected` bytes; more is an error, fewer a transient failure. */
async function readBody(res: Response, expected: number, what: string): Promise<Uint8Array> {
  const declared = res.headers.get("content-length");
  if (declared !== null && Number(declared) > expected) {
    await res.body?.cancel();
    throw new HexzError("io", `${what}: body of ${declared} bytes, expected ${expected}`);
  }
  const out = new Uint8Array(expected);
  let got = 0;
  if (res.body) {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (got + value.length > expected) {
        await reader.cancel();
        throw new HexzError("io", `${what}: body longer than the ${expected} bytes asked for`);
      }
      out.set(value, got);
      got += value.length;
    }
  }
  if (got !== expected) {
    throw new Transient(`${what}: body cut short: ${got} of ${expected} bytes`);
  }
  return out;
}

/** Whether a fetch failure is the missing network permission rather than the network. */
function isPermissionError(e: unknown): boolean {
  return e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied;
}

/** Opens `url` (http or https) as a byte source read lazily with range requests. */
export async function httpSource(url: string, opts: HttpSourceOptions = {}): Promise<ByteSource> {
  expectString(url, "httpSource", "a URL");
  expectOptions(opts, "httpSource: options");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new HexzError("usage", `${url}: not a valid URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new HexzError("unsupported", `${url}: only http and https URLs can be read`);
  }
  const doFetch = opts.fetch ?? fetch;
  const retries = opts.retries ?? 4;
  const blockSize = opts.blockSize ?? 64 * 1024;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const stats = opts.stats ?? { requests: 0, bytes: 0 };
  if (!(Number.isSafeInteger(retries) && retries >= 0)) {
    throw new HexzError("usage", `retries must be a whole number >= 0, not ${retries}`);
  }
  if (!(Number.isSafeInteger(blockSize) && blockSize >= 512 && blockSize <= MAX_REQUEST_BYTES)) {
    throw new HexzError("usage", `block size must be 512 bytes to 16 MiB, not ${blockSize}`);
  }
  const closing = new AbortController();
  const cache = createLru<number, Uint8Array>(opts.cacheBytes ?? 8 * 1024 * 1024);
  const inflight = new Map<number, Promise<Uint8Array>>();
  /** The validator of the version being read: an entity tag, or else Last-Modified. */
  let validator: { name: "etag" | "last-modified"; value: string } | null = null;
  let size = 0;
  let nextSequential = -1;
  let ahead = 0;

  /** One request with a timeout: the response, a function ending the timer, the timer's signal. */
  async function send(
    method: string,
    range: string | null,
  ): Promise<[Response, () => void, AbortSignal]> {
    if (closing.signal.aborted) throw new HexzError("io", `${url}: source is closed`);
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), timeoutMs);
    const done = () => clearTimeout(timer);
    const headers: Record<string, string> = { "accept-encoding": "identity" };
    if (range) headers.range = range;
    stats.requests++;
    try {
      const res = await doFetch(url, {
        method,
        headers,
        signal: AbortSignal.any([closing.signal, timeout.signal]),
      });
      return [res, done, timeout.signal];
    } catch (e) {
      done();
      throw classify(e, timeout.signal.aborted);
    }
  }

  function classify(e: unknown, timedOut: boolean): Error {
    if (e instanceof HexzError || e instanceof Transient) return e;
    if (isPermissionError(e)) {
      return new HexzError("io", `${url}: network access is not allowed (run with --allow-net)`);
    }
    if (closing.signal.aborted) return new HexzError("io", `${url}: source is closed`);
    if (timedOut) {
      const t = new Transient(`${url}: no answer within ${timeoutMs} ms`);
      t.slow = true;
      return t;
    }
    return new Transient(`${url}: ${fetchReason(e)}`);
  }

  async function withRetries<T>(fn: () => Promise<T>): Promise<T> {
    let slow = 0;
    for (let attempt = 0;; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof Transient)) throw e;
        if (e.slow) slow++;
        if (attempt >= retries || slow >= SLOW_TRIES || closing.signal.aborted) {
          const tries = attempt + 1;
          throw new HexzError(
            "io",
            `${e.message} (gave up after ${tries} attempt${tries === 1 ? "" : "s"})`,
          );
        }
        // 100 ms, 200 ms, 400 ms, ... at most 5 s, with jitter so clients do not march together.
        const base = Math.min(5000, 100 * 2 ** attempt);
        await sleep(base / 2 + Math.random() * base / 2, closing.signal);
      }
    }
  }

  /** Fails on a 4xx or 5xx answer (5xx is transient); returns otherwise. */
  async function checkStatus(res: Response, what: string): Promise<void> {
    if (res.status < 400) return;
    await res.body?.cancel();
    const msg = `${what}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`;
    if (res.status >= 500) throw new Transient(msg);
    if (res.status === 404 || res.status === 410) throw new HexzError("not-found", msg);
    throw new HexzError("io", msg);
  }

  /** Fails if the answer is of another version of the file than the first one, or may be:
   * one without the validator the server sent before. */
  function checkSame(res: Response) {
    if (!validator) return;
    const now = res.headers.get(validator.name);
    if (now === null) {
      throw new HexzError(
        "io",
        `${url}: the file may have changed while being read (${validator.name} ${validator.value} no longer sent)`,
      );
    }
    if (now !== validator.value) {
      throw new HexzError(
        "io",
        `${url}: the file changed while being read (${validator.name} ${validator.value} became ${now})`,
      );
    }
  }

  /** Fails on an answer in a Content-Encoding (asked for none): its bytes are not the file's,
   * and its lengths and ranges are those of the encoded body. */
  async function checkEncoding(res: Response, what: string): Promise<void> {
    const encoding = res.headers.get("content-encoding")?.trim() ?? "";
    if (encoding === "" || encoding.toLowerCase() === "identity") return;
    await res.body?.cancel();
    throw new HexzError(
      "io",
      `${what}: answered with Content-Encoding ${encoding}, not the bytes of the file (asked for identity)`,
    );
  }

  function remember(res: Response) {
    const etag = res.headers.get("etag");
    const modified = res.headers.get("last-modified");
    validator = etag !== null
      ? { name: "etag", value: etag }
      : modified !== null
      ? { name: "last-modified", value: modified }
      : null;
  }

  function parseSize(text: string | null, what: string): number {
    const n = text !== null && /^\d{1,16}$/.test(text.trim()) ? Number(text.trim()) : NaN;
    if (!Number.isSafeInteger(n)) throw new HexzError("io", `${what}: no valid size given`);
    return n;
  }

  /** Learns the size and version: HEAD, or a GET of the first byte where HEAD falls short. */
  async function probe(): Promise<number> {
    const viaHead = await withRetries(async () => {
      const [res, done] = await send("HEAD", null);
      done();
      await res.body?.cancel();
      if (res.status === 405 || res.status === 501) return null;
      await checkStatus(res, `${url}: HEAD`);
      await checkEncoding(res, `${url}: HEAD`);
      if (res.headers.get("content-length") === null) return null;
      remember(res);
      return parseSize(res.headers.get("content-length"), `${url}: HEAD`);
    });
    if (viaHead !== null) return viaHead;
    return await withRetries(async () => {
      const what = `${url}: GET bytes=0-0`;
      const [res, done, timeout] = await send("GET", "bytes=0-0");
      try {
        if (res.status === 416) {
          await res.body?.cancel();
          remember(res);
          return 0; // an empty file
        }
        await checkStatus(res, what);
        if (res.status !== 206) {
          await res.body?.cancel();
          throw new HexzError("io", `${url}: the server does not answer range requests`);
        }
        await checkEncoding(res, what);
        const m = /^bytes 0-0\/(\d+)$/.exec(res.headers.get("content-range")?.trim() ?? "");
        if (!m) throw new HexzError("io", `${what}: bad Content-Range`);
        remember(res);
        stats.bytes += (await readBody(res, 1, what)).length;
        return parseSize(m[1], what);
      } catch (e) {
        throw classify(e, timeout.aborted);
      } finally {
        done();
      }
    });
  }

  /** Fetches `[start, end)` with one range request, checked from status line to last byte. */
  function fetchRange(start: number, end: number): Promise<Uint8Array> {
    const last = end - 1;
    const what = `${url}: GET bytes=${start}-${last}`;
    return withRetries(async () => {
      const [res, done, timeout] = await send("GET", `bytes=${start}-${last}`);
      try {
        await checkStatus(res, what);
        if (res.status !== 206) {
          await res.body?.cancel();
          throw new HexzError(
            "io",
            `${what}: HTTP ${res.status} instead of 206: the server does not answer range requests`,
          );
        }
        await checkEncoding(res, what);
        checkSame(res);
        const cr = res.headers.get("content-range")?.trim() ?? "";
        const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(cr);
        if (!m || Number(m[1]) !== start || Number(m[2]) !== last) {
          await res.body?.cancel();
          throw new HexzError("io", `${what}: answered with Content-Range '${cr}'`);
        }
        if (Number(m[3]) !== size) {
          await res.body?.cancel();
          throw new HexzError(
            "io",
            `${url}: the file changed while being read (size ${size} became ${m[3]})`,
          );
        }
        const body = await readBody(res, end - start, what);
        stats.bytes += body.length;
        return body;
      } catch (e) {
        throw classify(e, timeout.aborted);
      } finally {
        done();
      }
    });
  }

  /** Starts fetching blocks `first..last` with one request; each block shares its result. */
  function fetchBlocks(first: number, last: number) {
    const start = first * blockSize;
    const run = fetchRange(start, Math.min((last + 1) * blockSize, size));
    for (let i = first; i <= last; i++) {
      const from = (i - first) * blockSize;
      const p = first === last ? run : run.then((b) => b.slice(from, from + blockSize));
      inflight.set(i, p);
      p.then((b) => {
        inflight.delete(i);
        if (!closing.signal.aborted) cache.set(i, b, b.length);
      }, () => inflight.delete(i));
    }
  }

  size = await probe();
  const maxRun = Math.max(1, Math.floor(MAX_REQUEST_BYTES / blockSize));
  const maxAhead = Math.max(1, Math.floor(MAX_AHEAD_BYTES / blockSize));
  const lastBlock = Math.ceil(size / blockSize) - 1;

  const src: ByteSource = {
    size,
    name: url,
    async read(offset, length) {
      if (
        !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 ||
        length < 0 || offset + length > size
      ) {
        throw new HexzError(
          "corrupt",
          `${url}: read of ${length} bytes at offset ${offset} is outside the file (${size} bytes)`,
        );
      }
      if (closing.signal.aborted) throw new HexzError("io", `${url}: source is closed`);
      const out = new Uint8Array(length);
      if (length === 0) return out;
      const first = Math.floor(offset / blockSize);
      const last = Math.floor((offset + length - 1) / blockSize);
      ahead = offset === nextSequential ? Math.min(maxAhead, Math.max(1, ahead * 2)) : 0;
      nextSequential = offset + length;
      // Start one request per run of missing blocks (read-ahead included), then take every
      // block needed, all before the first await so that none can be evicted meanwhile.
      let runStart = -1;
      const end = Math.min(last + ahead, lastBlock);
      for (let i = first; i <= end; i++) {
        if (cache.get(i) ?? inflight.get(i)) {
          if (runStart >= 0) fetchBlocks(runStart, i - 1);
          runStart = -1;
          if (i > last) break; // read ahead only up to the first block already there
        } else if (runStart < 0) {
          runStart = i;
        } else if (i - runStart >= maxRun) {
          fetchBlocks(runStart, i - 1);
          runStart = i;
        }
        if (i === end && runStart >= 0) fetchBlocks(runStart, i);
      }
      const parts: (Uint8Array | Promise<Uint8Array> | undefined)[] = [];
      for (let i = first; i <= last; i++) parts.push(cache.get(i) ?? inflight.get(i));
      let pos = offset;
      for (let k = 0; k < parts.length; k++) {
        const i = first + k;
        const block = await parts[k];
        if (!block) throw new HexzError("io", `${url}: block ${i} was not fetched`);
        const from = pos - i * blockSize;
        const n = Math.min(block.length - from, offset + length - pos);
        if (n <= 0) throw new HexzError("io", `${url}: block ${i} is short`);
        out.set(block.subarray(from, from + n), pos - offset);
        pos += n;
      }
      return out;
    },
    close() {
      closing.abort();
      cache.clear();
      inflight.clear();
    },
  };
  return src;
}

/**
 * Why a fetch failed, in the words of the layer that failed: the runtime says only "fetch
 * failed" and keeps the reason in `cause` ("error sending request for url (...): client error
 * (Connect): tcp connect error: Connection refused (os error 111)"), of which the last two
 * parts are kept ("tcp connect error: Connection refused").
 */
function fetchReason(e: unknown): string {
  const cause = (e as { cause?: { message?: unknown } })?.cause?.message;
  if (typeof cause !== "string" || !cause) return String((e as Error)?.message ?? e);
  return cause.split(": ").slice(-2).join(": ").replace(/ \(os error \d+\)$/, "");
}
