/**
 * Serves an archive over HTTP with `Deno.serve`: `GET`/`HEAD /disk`, `/memory` (streams with
 * bytes in them) and, for directory archives, `/files/<path>` for each regular file. Byte
 * ranges, entity tags and conditional requests follow RFC 9110 (see `objects.ts`); bodies are
 * streamed a piece at a time. With `s3: true` the same objects are published as one
 * path-style S3 bucket instead (see `s3.ts`).
 *
 * @module
 */
import { HexzError } from "../core/errors.ts";
import type { Archive } from "../core/read/archive.ts";
import { alreadyReported, archiveCatalog, type ObjectCatalog, objectResponse } from "./objects.ts";
import { checkBucketName, defaultBucketName, s3Handler } from "./s3.ts";
import { expectArchive, expectOptions } from "../core/args.ts";

export interface ServeHttpOptions {
  /** Address to bind (default 127.0.0.1). */
  hostname?: string;
  /** TCP port (default 8080; 0 picks a free one). */
  port?: number;
  /** Publish as an S3 bucket instead of plain paths. */
  s3?: boolean;
  /** S3 bucket name (default: from the archive's file name). */
  bucket?: string;
  /** Aborting it stops the server, as `shutdown` does. */
  signal?: AbortSignal;
  /** Called once the server listens, with the address it is bound to. */
  onListen?: (addr: { hostname: string; port: number }) => void;
  /** Hears of failures while answering (a damaged block, a failed read mid-body). */
  onError?: (e: unknown) => void;
}

export interface HttpServer {
  /** Where the server listens (the real port when 0 was asked for). */
  addr: { hostname: string; port: number };
  /** Settles when the server has stopped. */
  finished: Promise<void>;
  /**
   * Stops accepting connections and waits for the answers under way, at most `graceMs`
   * (default SHUTDOWN_GRACE_MS): a client that stopped reading its answer cannot hold the
   * server up. Answers still unfinished then are abandoned (the command line exits).
   */
  shutdown(graceMs?: number): Promise<void>;
}

/** How long `shutdown` waits for answers under way (NBD waits as long for its clients). */
export const SHUTDOWN_GRACE_MS = 2000;

/** The handler for plain paths: `/disk`, `/memory`, `/files/<path>`. */
export function plainHandler(
  catalog: ObjectCatalog,
  onError?: (e: unknown) => void,
): (req: Request) => Response | Promise<Response> {
  return (req) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    let key: string;
    try {
      key = decodeURIComponent(new URL(req.url).pathname).slice(1);
    } catch {
      return new Response("bad path\n", { status: 400 });
    }
    const obj = catalog.get(key);
    if (!obj) return new Response(req.method === "HEAD" ? null : "not found\n", { status: 404 });
    return objectResponse(req, obj, { onError });
  };
}

/** Starts serving `archive`; resolves once the server listens. */
export async function serveHttp(
  archive: Archive,
  opts: ServeHttpOptions = {},
): Promise<HttpServer> {
  expectArchive(archive, "serveHttp");
  expectOptions(opts, "serveHttp: options");
  const hostname = opts.hostname ?? "127.0.0.1";
  const port = opts.port ?? 8080;
  if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new HexzError("usage", `port ${port} is not a TCP port (0-65535)`);
  }
  const catalog = await archiveCatalog(archive);
  const handler = opts.s3
    ? s3Handler(
      catalog,
      opts.bucket !== undefined
        ? checkBucketName(opts.bucket)
        : defaultBucketName(archive.source.name),
      opts.onError,
    )
    : plainHandler(catalog, opts.onError);
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname,
      port,
      signal: opts.signal,
      onListen: () => {}, // Deno would print a line of its own
      onError: (e) => {
        if (!alreadyReported(e)) opts.onError?.(e);
        const msg = e instanceof HexzError ? e.message : "internal error";
        return new Response(`${msg}\n`, { status: 500 });
      },
    }, handler);
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new HexzError("io", `cannot listen on ${hostname}:${port}: address already in use`);
    }
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new HexzError("io", `cannot listen on ${hostname}:${port}: run with --allow-net`);
    }
    throw new HexzError("io", `cannot listen on ${hostname}:${port}: ${(e as Error).message}`);
  }
  const addr = { hostname: server.addr.hostname, port: server.addr.port };
  opts.onListen?.(addr);
  return {
    addr,
    finished: server.finished,
    async shutdown(graceMs = SHUTDOWN_GRACE_MS) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stopped = server.shutdown();
      stopped.catch(() => {}); // after the grace period nobody waits for it
      try {
        await Promise.race([stopped, new Promise((r) => timer = setTimeout(r, graceMs))]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
