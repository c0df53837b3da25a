/**
 * Serves one stream of an archive as a Network Block Device (NBD) export, on a Unix socket or
 * TCP, so that `qemu-img`, `qemu-io` and QEMU itself can use an archive as a disk.
 *
 * Protocol: the fixed newstyle handshake of the NBD specification (NetworkBlockDevice/nbd,
 * doc/proto.md). Options EXPORT_NAME, INFO, GO, LIST, ABORT, STRUCTURED_REPLY and
 * LIST/SET_META_CONTEXT (the `base:allocation` context) are answered; others (STARTTLS,
 * EXTENDED_HEADERS, ...) are refused with NBD_REP_ERR_UNSUP. Commands: READ, WRITE, FLUSH, TRIM,
 * WRITE_ZEROES, BLOCK_STATUS and DISC; anything else gets EINVAL.
 *
 * With structured replies, a READ answers zero blocks (as the index records them) with hole
 * chunks instead of zeros on the wire, unless the client asked not to fragment (DF); and
 * BLOCK_STATUS reports them as holes that read as zeros, so `qemu-img convert` and `map` skip
 * them. Everything else (blocks in a parent, overlay writes) is reported as data.
 *
 * Writes go to an overlay file (see core/overlay/overlay.ts), never to the archive; reads then
 * come from the overlay, which falls back to the archive. A read-only server answers writes
 * with EPERM. TRIM zeroes the range, as WRITE_ZEROES does.
 *
 * Every request is checked before it is run: a range past the end of the export gets EINVAL
 * (reads) or ENOSPC (writes), a READ or WRITE longer than 32 MiB gets EINVAL (its payload is
 * read and dropped, so the connection stays in step). A malformed message (a bad magic number,
 * an oversized option, unknown client flags) closes that connection and no other.
 *
 * Requests of one connection are started in the order they arrive and may run at the same time
 * (at most 16 requests or 64 MiB of payload per connection); replies carry the client's cookie
 * and may come back in any order. Overlay operations run in the order they were started, so a
 * FLUSH covers every write whose reply was already sent.
 *
 * @module
 */
import { removeStaleSocket } from "./socket.ts";
import { HexzError } from "../core/errors.ts";
import { concatBytes } from "../core/format/bytes.ts";
import { type StreamName, STREAMS } from "../core/format/constants.ts";
import {
  openOverlay,
  type Overlay,
  OVERLAY_BLOCK,
  type OverlayCompactOptions,
} from "../core/overlay/overlay.ts";
import type { Archive } from "../core/read/archive.ts";
import { appendExtent, type Extent, extents } from "../core/read/extents.ts";
import { expectArchive, expectOptions } from "../core/args.ts";

export interface NbdOptions {
  /** Listen on this Unix socket path (a stale socket file there is removed first). */
  socket?: string;
  /** TCP address to bind when `socket` is not given (default 127.0.0.1). */
  hostname?: string;
  /** TCP port (default 10809, the NBD port; 0 picks a free one). */
  port?: number;
  /** Overlay file that receives writes (created if missing when not read-only). */
  overlay?: string;
  /** Refuse writes with EPERM and advertise the export as read-only. */
  readOnly: boolean;
  /** Name of the export (default ""). The stream names also work as export names. */
  exportName?: string;
  /** Stream served under `exportName` (default "disk"). */
  stream?: "disk" | "memory";
  /** How a writable overlay compacts (default: on open and while written, when mostly dead;
   * see openOverlay). */
  compact?: OverlayCompactOptions;
}

export interface NbdServer {
  /** An NBD URI for the default export, as qemu takes it (`nbd+unix:///?socket=...`). */
  address: string;
  /** Settles once the server has stopped and released everything. */
  finished: Promise<void>;
  /** Stops listening, closes every connection, flushes and closes the overlay. */
  close(): Promise<void>;
}

/** Largest READ or WRITE payload accepted, and the maximum block size advertised. */
export const NBD_MAX_PAYLOAD = 32 * 1024 * 1024;
const DEFAULT_PORT = 10809;
/** Longest option payload accepted during the handshake (names are at most 4096 bytes). */
const MAX_OPTION = 64 * 1024;
const MAX_INFLIGHT = 16;
const MAX_INFLIGHT_BYTES = 64 * 1024 * 1024;

// Magic numbers.
const NBDMAGIC = 0x4e42444d41474943n;
const IHAVEOPT = 0x49484156454f5054n;
const REPLY_MAGIC = 0x3e889045565a9n;
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

// Handshake flags (server) and client flags: the same two bits.
const FLAG_FIXED_NEWSTYLE = 1;
const FLAG_NO_ZEROES = 2;

// Options.
const OPT_EXPORT_NAME = 1;
const OPT_ABORT = 2;
const OPT_LIST = 3;
const OPT_INFO = 6;
const OPT_GO = 7;
const OPT_STRUCTURED_REPLY = 8;
const OPT_LIST_META_CONTEXT = 9;
const OPT_SET_META_CONTEXT = 10;

// Option replies.
const REP_ACK = 1;
const REP_SERVER = 2;
const REP_INFO = 3;
const REP_META_CONTEXT = 4;
const REP_ERR_UNSUP = 0x80000001;
const REP_ERR_INVALID = 0x80000003;
const REP_ERR_UNKNOWN = 0x80000006;

// Information types.
const INFO_EXPORT = 0;
const INFO_BLOCK_SIZE = 3;

// Transmission flags.
const TF_HAS_FLAGS = 1;
const TF_READ_ONLY = 2;
const TF_SEND_FLUSH = 4;
const TF_SEND_TRIM = 32;
const TF_SEND_WRITE_ZEROES = 64;
const TF_SEND_DF = 128;

// Commands and command flags.
const CMD_READ = 0;
const CMD_WRITE = 1;
const CMD_DISC = 2;
const CMD_FLUSH = 3;
const CMD_TRIM = 4;
const CMD_WRITE_ZEROES = 6;
const CMD_BLOCK_STATUS = 7;
const CMD_FLAG_FUA = 1;
const CMD_FLAG_NO_HOLE = 2;
const CMD_FLAG_DF = 4;
const CMD_FLAG_REQ_ONE = 8;

// Structured reply chunks.
const REPLY_FLAG_DONE = 1;
const REPLY_TYPE_NONE = 0;
const REPLY_TYPE_OFFSET_DATA = 1;
const REPLY_TYPE_OFFSET_HOLE = 2;
const REPLY_TYPE_BLOCK_STATUS = 5;
const REPLY_TYPE_ERROR = 32769;

/** The one metadata context: `base:allocation`, with this id. */
const BASE_ALLOCATION = "base:allocation";
const ALLOCATION_ID = 1;
const STATE_HOLE = 1;
const STATE_ZERO = 2;
/** Descriptors per BLOCK_STATUS reply at most (the rest of a range is asked for again). */
const MAX_EXTENTS = 4096;
/** Zero runs shorter than this travel as data in a READ: a hole chunk is not worth it. */
const MIN_HOLE = 4096;

// Error values of the reply.
const EPERM = 1;
const EIO = 5;
const EINVAL = 22;
const ENOSPC = 28;

/** An export: a name and the stream behind it. */
interface Export {
  name: string;
  stream: StreamName;
  size: number;
}

/** The connection sent something that is not NBD; it is closed. */
class ProtocolError extends Error {}

/** The peer closed the connection (or `close()` did). */
class Closed extends Error {}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Starts an NBD server for `archive` (which stays owned by the caller). Rejects with a
 * `HexzError` when the options do not fit (a writable server needs an overlay; an empty stream
 * cannot be served) or the address cannot be bound.
 */
export async function serveNbd(archive: Archive, opts: NbdOptions): Promise<NbdServer> {
  expectArchive(archive, "serveNbd");
  expectOptions(opts, "serveNbd: options", true);
  const stream: StreamName = opts.stream ?? "disk";
  if (!STREAMS.includes(stream)) {
    throw new HexzError("usage", `unknown stream '${stream}' (expected disk or memory)`);
  }
  const exportName = opts.exportName ?? "";
  const nameBytes = encoder.encode(exportName);
  if (nameBytes.length > 4096 || exportName.includes("\0")) {
    throw new HexzError("usage", "export name must be at most 4096 bytes, without NUL");
  }
  if (archive.size(stream) === 0) {
    throw new HexzError("usage", `the archive's ${stream} stream is empty: nothing to serve`);
  }
  if (!opts.readOnly && !opts.overlay) {
    throw new HexzError(
      "usage",
      "a writable NBD export needs an overlay file (or serve read-only)",
    );
  }
  const exports = new Map<string, Export>();
  exports.set(exportName, { name: exportName, stream, size: archive.size(stream) });
  for (const s of STREAMS) {
    if (!exports.has(s) && archive.size(s) > 0) {
      exports.set(s, { name: s, stream: s, size: archive.size(s) });
    }
  }

  const overlay = opts.overlay
    ? await openOverlay(opts.overlay, archive, {
      ...opts.compact,
      create: !opts.readOnly,
      readOnly: opts.readOnly,
    })
    : null;
  let listener: Deno.Listener;
  let address: string;
  try {
    if (opts.socket) {
      await removeStaleSocket(opts.socket);
      listener = Deno.listen({ transport: "unix", path: opts.socket });
      address = `nbd+unix:///${encodeURIComponent(exportName)}?socket=${opts.socket}`;
    } else {
      const hostname = opts.hostname ?? "127.0.0.1";
      listener = Deno.listen({ hostname, port: opts.port ?? DEFAULT_PORT });
      const addr = listener.addr as Deno.NetAddr;
      const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
      address = `nbd://${host}:${addr.port}/${encodeURIComponent(exportName)}`;
    }
  } catch (e) {
    await overlay?.close();
    if (e instanceof HexzError) throw e;
    const where = opts.socket ?? `${opts.hostname ?? "127.0.0.1"}:${opts.port ?? DEFAULT_PORT}`;
    throw new HexzError("io", `cannot listen on ${where}: ${(e as Error).message}`);
  }

  const backend: Backend = {
    exports,
    readOnly: opts.readOnly,
    read: (s, offset, length) =>
      overlay ? overlay.read(s, offset, length) : archive.read(s, offset, length),
    async extents(s, offset, length) {
      const ex = await extents(archive, s, offset, length, MAX_EXTENTS);
      if (!overlay) return ex;
      // Blocks written to the overlay are data, even over a zero block of the archive.
      const changed = overlay.changed(s);
      // Splitting can make more than MAX_EXTENTS: a reply may cover a prefix of the range.
      return merge(ex.flatMap((e) => e.zero ? splitAt(changed, e) : [e])).slice(0, MAX_EXTENTS);
    },
    overlay,
  };
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();

  async function acceptLoop() {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const task = serveConnection(conn, backend).finally(() => {
          conns.delete(conn);
          tasks.delete(task);
          try {
            conn.close();
          } catch { /* already closed */ }
        });
        tasks.add(task);
      }
    } catch {
      // The listener was closed (close()) or failed; either way the server stops.
    }
  }

  let stopping: Promise<void> | null = null;
  function stop(): Promise<void> {
    stopping ??= (async () => {
      try {
        listener.close();
      } catch { /* already closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await Promise.allSettled([...tasks]);
      try {
        await overlay?.flush();
      } finally {
        await overlay?.close();
        if (opts.socket) await Deno.remove(opts.socket).catch(() => {});
      }
    })();
    return stopping;
  }

  const finished = acceptLoop().then(stop);
  return {
    address,
    finished,
    async close() {
      await stop();
      await finished;
    },
  };
}

interface Backend {
  exports: Map<string, Export>;
  readOnly: boolean;
  read(stream: StreamName, offset: number, length: number): Promise<Uint8Array>;
  /** Known-zero and other extents of [offset, offset + length), within the stream. */
  extents(stream: StreamName, offset: number, length: number): Promise<Extent[]>;
  overlay: Overlay | null;
}

/** A zero extent with the overlay blocks (sorted numbers) inside it made data. */
function splitAt(blocks: number[], e: Extent): Extent[] {
  const end = e.offset + e.length;
  let lo = 0, hi = blocks.length;
  const first = Math.floor(e.offset / OVERLAY_BLOCK);
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (blocks[mid] < first) lo = mid + 1;
    else hi = mid;
  }
  const out: Extent[] = [];
  let pos = e.offset;
  for (let i = lo; i < blocks.length && blocks[i] * OVERLAY_BLOCK < end; i++) {
    const from = Math.max(blocks[i] * OVERLAY_BLOCK, e.offset);
    const to = Math.min(from - (from % OVERLAY_BLOCK) + OVERLAY_BLOCK, end);
    if (from > pos) out.push({ offset: pos, length: from - pos, zero: true });
    out.push({ offset: from, length: to - from, zero: false });
    pos = to;
  }
  if (pos < end) out.push({ offset: pos, length: end - pos, zero: true });
  return out;
}

/** Adjacent extents of the same kind joined. */
function merge(ex: Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const e of ex) appendExtent(out, e);
  return out;
}

/** Exact-length reads from a connection, through a small buffer. */
function reader(conn: Deno.Conn) {
  let buf = new Uint8Array(0);
  let pos = 0;
  const chunk = new Uint8Array(64 * 1024);

  async function fill(): Promise<void> {
    const n = await conn.read(chunk);
    if (n === null) throw new Closed();
    buf = chunk.subarray(0, n);
    pos = 0;
  }

  return {
    /** Exactly `n` bytes; throws Closed when the peer goes away first. */
    async exact(n: number): Promise<Uint8Array> {
      const out = new Uint8Array(n);
      let got = 0;
      while (got < n) {
        if (pos === buf.length) {
          if (n - got >= chunk.length) {
            // Large payloads go straight into the destination.
            const r = await conn.read(out.subarray(got));
            if (r === null) throw new Closed();
            got += r;
            continue;
          }
          await fill();
        }
        const take = Math.min(n - got, buf.length - pos);
        out.set(buf.subarray(pos, pos + take), got);
        pos += take;
        got += take;
      }
      return out;
    },
    /** Reads and drops `n` bytes without holding them all. */
    async skip(n: number): Promise<void> {
      while (n > 0) {
        if (pos === buf.length) await fill();
        const take = Math.min(n, buf.length - pos);
        pos += take;
        n -= take;
      }
    },
  };
}

/** Writes whole messages to a connection, one after another. */
function writer(conn: Deno.Conn) {
  let chain: Promise<void> = Promise.resolve();
  return (bytes: Uint8Array): Promise<void> => {
    const p = chain.then(async () => {
      let done = 0;
      while (done < bytes.length) done += await conn.write(bytes.subarray(done));
    });
    chain = p.catch(() => {});
    return p;
  };
}

async function serveConnection(conn: Deno.Conn, backend: Backend): Promise<void> {
  const input = reader(conn);
  const send = writer(conn);
  try {
    const chosen = await handshake(input, send, backend);
    if (chosen) await transmission(input, send, backend, chosen);
  } catch (e) {
    if (e instanceof Closed || e instanceof ProtocolError) return;
    if (e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) return;
    if (e instanceof Deno.errors.BrokenPipe || e instanceof Deno.errors.ConnectionReset) return;
    console.error(`hexz nbd: connection dropped: ${(e as Error).message}`);
  }
}

type Input = ReturnType<typeof reader>;
type Send = ReturnType<typeof writer>;

function transmissionFlags(backend: Backend, structured: boolean): number {
  return TF_HAS_FLAGS | TF_SEND_FLUSH | TF_SEND_TRIM | TF_SEND_WRITE_ZEROES |
    (backend.readOnly ? TF_READ_ONLY : 0) | (structured ? TF_SEND_DF : 0);
}

/** What a connection negotiated. */
interface Session {
  exp: Export;
  /** Structured replies (NBD_OPT_STRUCTURED_REPLY). */
  structured: boolean;
  /** `base:allocation` selected for this export (NBD_OPT_SET_META_CONTEXT). */
  allocation: boolean;
}

/**
 * A LIST_META_CONTEXT or SET_META_CONTEXT request: the export name and the queries, or null
 * when malformed.
 */
function parseMetaRequest(data: Uint8Array): { name: string; queries: string[] } | null {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length < 8) return null;
  const nameLength = dv.getUint32(0);
  if (nameLength > data.length - 8) return null;
  const name = decoder.decode(data.subarray(4, 4 + nameLength));
  const count = dv.getUint32(4 + nameLength);
  let at = 8 + nameLength;
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 4 > data.length) return null;
    const n = dv.getUint32(at);
    if (n > data.length - at - 4) return null;
    queries.push(decoder.decode(data.subarray(at + 4, at + 4 + n)));
    at += 4 + n;
  }
  return at === data.length ? { name, queries } : null;
}

/** Whether a metadata query selects `base:allocation` (listing accepts the namespace). */
function selectsAllocation(query: string, listing: boolean): boolean {
  return query === BASE_ALLOCATION || (listing && query === "base:");
}

function optionReply(option: number, type: number, data: Uint8Array = new Uint8Array(0)) {
  const b = new Uint8Array(20 + data.length);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, REPLY_MAGIC);
  dv.setUint32(8, option);
  dv.setUint32(12, type);
  dv.setUint32(16, data.length);
  b.set(data, 20);
  return b;
}

function errorReply(option: number, type: number, message: string) {
  return optionReply(option, type, encoder.encode(message));
}

/** Runs the handshake; returns what was negotiated, or null when the client aborted. */
async function handshake(input: Input, send: Send, backend: Backend): Promise<Session | null> {
  let structured = false;
  /** The export `base:allocation` was selected for, if any. */
  let allocationFor: string | null = null;
  const hello = new Uint8Array(18);
  const hv = new DataView(hello.buffer);
  hv.setBigUint64(0, NBDMAGIC);
  hv.setBigUint64(8, IHAVEOPT);
  hv.setUint16(16, FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
  await send(hello);
  const clientFlags = new DataView((await input.exact(4)).buffer).getUint32(0);
  if (clientFlags & ~(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)) {
    throw new ProtocolError("unknown client flags");
  }
  const noZeroes = (clientFlags & FLAG_NO_ZEROES) !== 0;

  for (;;) {
    const head = new DataView((await input.exact(16)).buffer);
    if (head.getBigUint64(0) !== IHAVEOPT) throw new ProtocolError("bad option magic");
    const option = head.getUint32(8);
    const length = head.getUint32(12);
    if (length > MAX_OPTION) throw new ProtocolError("option too long");
    const data = await input.exact(length);

    switch (option) {
      case OPT_EXPORT_NAME: {
        const exp = backend.exports.get(decoder.decode(data));
        // The protocol has no error reply here: an unknown name ends the connection.
        if (!exp) throw new ProtocolError("unknown export");
        const b = new Uint8Array(noZeroes ? 10 : 134);
        const dv = new DataView(b.buffer);
        dv.setBigUint64(0, BigInt(advertisedSize(exp)));
        dv.setUint16(8, transmissionFlags(backend, structured));
        await send(b);
        return { exp, structured, allocation: allocationFor === exp.name };
      }
      case OPT_ABORT:
        await send(optionReply(option, REP_ACK)).catch(() => {});
        return null;
      case OPT_LIST: {
        if (length !== 0) {
          await send(errorReply(option, REP_ERR_INVALID, "LIST takes no data"));
          break;
        }
        for (const name of backend.exports.keys()) {
          const n = encoder.encode(name);
          const d = new Uint8Array(4 + n.length);
          new DataView(d.buffer).setUint32(0, n.length);
          d.set(n, 4);
          await send(optionReply(option, REP_SERVER, d));
        }
        await send(optionReply(option, REP_ACK));
        break;
      }
      case OPT_INFO:
      case OPT_GO: {
        const name = parseInfoRequest(data);
        if (name === null) {
          await send(errorReply(option, REP_ERR_INVALID, "malformed INFO/GO request"));
          break;
        }
        const exp = backend.exports.get(name);
        if (!exp) {
          await send(errorReply(option, REP_ERR_UNKNOWN, `no export named '${name}'`));
          break;
        }
        const info = new Uint8Array(12);
        const iv = new DataView(info.buffer);
        iv.setUint16(0, INFO_EXPORT);
        iv.setBigUint64(2, BigInt(advertisedSize(exp)));
        iv.setUint16(10, transmissionFlags(backend, structured));
        await send(optionReply(option, REP_INFO, info));
        const bs = new Uint8Array(14);
        const bv = new DataView(bs.buffer);
        bv.setUint16(0, INFO_BLOCK_SIZE);
        bv.setUint32(2, 1); // minimum: any alignment works
        bv.setUint32(6, 4096); // preferred: the overlay's block
        bv.setUint32(10, NBD_MAX_PAYLOAD);
        await send(optionReply(option, REP_INFO, bs));
        await send(optionReply(option, REP_ACK));
        if (option === OPT_GO) return { exp, structured, allocation: allocationFor === exp.name };
        break;
      }
      case OPT_STRUCTURED_REPLY:
        if (length !== 0) {
          await send(errorReply(option, REP_ERR_INVALID, "STRUCTURED_REPLY takes no data"));
          break;
        }
        structured = true;
        await send(optionReply(option, REP_ACK));
        break;
      case OPT_LIST_META_CONTEXT:
      case OPT_SET_META_CONTEXT: {
        const listing = option === OPT_LIST_META_CONTEXT;
        const req = parseMetaRequest(data);
        if (!structured) {
          await send(errorReply(option, REP_ERR_INVALID, "negotiate structured replies first"));
          break;
        }
        if (req === null) {
          await send(errorReply(option, REP_ERR_INVALID, "malformed metadata context request"));
          break;
        }
        if (!backend.exports.has(req.name)) {
          await send(errorReply(option, REP_ERR_UNKNOWN, `no export named '${req.name}'`));
          break;
        }
        const chosen = listing && req.queries.length === 0 ||
          req.queries.some((q) => selectsAllocation(q, listing));
        if (!listing) allocationFor = chosen ? req.name : null;
        if (chosen) {
          const n = encoder.encode(BASE_ALLOCATION);
          const d = new Uint8Array(4 + n.length);
          // Listing replies carry id 0 (reserved); a selection carries the id BLOCK_STATUS uses.
          new DataView(d.buffer).setUint32(0, listing ? 0 : ALLOCATION_ID);
          d.set(n, 4);
          await send(optionReply(option, REP_META_CONTEXT, d));
        }
        await send(optionReply(option, REP_ACK));
        break;
      }
      default:
        await send(errorReply(option, REP_ERR_UNSUP, `option ${option} is not supported`));
    }
  }
}

/** The export name of an INFO/GO request, or null when the data is malformed. */
function parseInfoRequest(data: Uint8Array): string | null {
  if (data.length < 6) return null;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const nameLength = dv.getUint32(0);
  if (nameLength > data.length - 6) return null;
  const count = dv.getUint16(4 + nameLength);
  if (6 + nameLength + 2 * count !== data.length) return null;
  return decoder.decode(data.subarray(4, 4 + nameLength));
}

function simpleReply(cookie: Uint8Array, error: number, data?: Uint8Array): Uint8Array {
  const b = new Uint8Array(16 + (data?.length ?? 0));
  const dv = new DataView(b.buffer);
  dv.setUint32(0, SIMPLE_REPLY_MAGIC);
  dv.setUint32(4, error);
  b.set(cookie, 8);
  if (data) b.set(data, 16);
  return b;
}

interface Request {
  flags: number;
  type: number;
  cookie: Uint8Array;
  offset: number;
  length: number;
  payload: Uint8Array | null;
}

async function transmission(input: Input, send: Send, backend: Backend, session: Session) {
  const inflight = new Set<Promise<void>>();
  let inflightBytes = 0;
  try {
    for (;;) {
      const head = await input.exact(28);
      const dv = new DataView(head.buffer);
      if (dv.getUint32(0) !== REQUEST_MAGIC) throw new ProtocolError("bad request magic");
      const offset64 = dv.getBigUint64(16);
      const req: Request = {
        flags: dv.getUint16(4),
        type: dv.getUint16(6),
        cookie: head.slice(8, 16),
        // Offsets past 2^53 are out of range for any export; keep them out of range.
        offset: offset64 > BigInt(Number.MAX_SAFE_INTEGER)
          ? Number.MAX_SAFE_INTEGER
          : Number(offset64),
        length: dv.getUint32(24),
        payload: null,
      };
      if (req.type === CMD_DISC) return;
      if (req.type === CMD_WRITE) {
        if (req.length > NBD_MAX_PAYLOAD) {
          await input.skip(req.length);
          await send(simpleReply(req.cookie, EINVAL));
          continue;
        }
        req.payload = await input.exact(req.length);
      }
      const error = check(req, session, backend);
      if (error) {
        await send(requestError(session, req, error));
        continue;
      }
      const cost = req.type === CMD_READ || req.type === CMD_WRITE ? req.length : 0;
      while (
        inflight.size >= MAX_INFLIGHT ||
        (inflight.size > 0 && inflightBytes + cost > MAX_INFLIGHT_BYTES)
      ) {
        await Promise.race(inflight);
      }
      inflightBytes += cost;
      // run() starts its backend call before its first await, so calls keep arrival order.
      const task = run(req, session, backend, send).finally(() => {
        inflightBytes -= cost;
        inflight.delete(task);
      });
      inflight.add(task);
    }
  } finally {
    // DISC (and a dropped connection) still lets the started requests finish.
    await Promise.allSettled([...inflight]);
  }
}

/** The error value for a request that must not run, or 0. */
function check(req: Request, session: Session, backend: Backend): number {
  const exp = session.exp;
  const inRange = req.offset + req.length <= exp.size;
  switch (req.type) {
    case CMD_READ: {
      const ok = req.offset + req.length <= advertisedSize(exp);
      const allowed = session.structured ? CMD_FLAG_DF : 0;
      if (req.flags & ~allowed || req.length > NBD_MAX_PAYLOAD || !ok) return EINVAL;
      return 0;
    }
    case CMD_BLOCK_STATUS: {
      const ok = req.length > 0 && req.offset + req.length <= advertisedSize(exp);
      if (!session.allocation || req.flags & ~CMD_FLAG_REQ_ONE || !ok) return EINVAL;
      return 0;
    }
    case CMD_WRITE:
    case CMD_TRIM:
    case CMD_WRITE_ZEROES: {
      const allowed = CMD_FLAG_FUA | (req.type === CMD_WRITE_ZEROES ? CMD_FLAG_NO_HOLE : 0);
      if (req.flags & ~allowed) return EINVAL;
      if (backend.readOnly) return EPERM;
      return inRange ? 0 : ENOSPC;
    }
    case CMD_FLUSH:
      return req.flags === 0 ? 0 : EINVAL;
    default:
      return EINVAL;
  }
}

/**
 * The size told to clients: the stream's size rounded up to a whole 512-byte sector. QEMU's
 * block layer works in sectors, and with simple replies its NBD client hangs reading a tail it
 * truncated itself; a whole last sector avoids that (and is kept with structured replies). The
 * tail past the stream's end reads as zeros and refuses writes (ENOSPC).
 */
function advertisedSize(exp: Export): number {
  return Math.ceil(exp.size / 512) * 512;
}

/** `length` bytes at `offset`, zeros past the export's end (the sector tail QEMU reads). */
async function readPadded(
  backend: Backend,
  exp: Export,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  if (offset + length <= exp.size) return await backend.read(exp.stream, offset, length);
  const out = new Uint8Array(length);
  if (offset < exp.size) out.set(await backend.read(exp.stream, offset, exp.size - offset));
  return out;
}

/** One structured reply chunk. */
function chunk(
  cookie: Uint8Array,
  flags: number,
  type: number,
  payload: Uint8Array[],
): Uint8Array[] {
  const length = payload.reduce((n, p) => n + p.length, 0);
  const h = new Uint8Array(20);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, STRUCTURED_REPLY_MAGIC);
  dv.setUint16(4, flags);
  dv.setUint16(6, type);
  h.set(cookie, 8);
  dv.setUint32(16, length);
  return [h, ...payload];
}

/** A structured error chunk (the whole reply). */
function structuredError(cookie: Uint8Array, error: number, message = ""): Uint8Array {
  const m = encoder.encode(message.slice(0, 1000));
  const p = new Uint8Array(6 + m.length);
  const dv = new DataView(p.buffer);
  dv.setUint32(0, error);
  dv.setUint16(4, m.length);
  p.set(m, 6);
  return concatBytes(...chunk(cookie, REPLY_FLAG_DONE, REPLY_TYPE_ERROR, [p]));
}

/** The error reply a request gets: structured for READ and BLOCK_STATUS when negotiated. */
function requestError(session: Session, req: Request, error: number, message = ""): Uint8Array {
  const structured = session.structured &&
    (req.type === CMD_READ || req.type === CMD_BLOCK_STATUS);
  return structured ? structuredError(req.cookie, error, message) : simpleReply(req.cookie, error);
}

/** Extents of [offset, offset + length), with the sector tail past the stream as zeros. */
async function paddedExtents(
  backend: Backend,
  exp: Export,
  offset: number,
  length: number,
): Promise<Extent[]> {
  const ex = offset < exp.size
    ? await backend.extents(exp.stream, offset, Math.min(length, exp.size - offset))
    : [];
  const covered = ex.reduce((n, e) => n + e.length, 0);
  const end = offset + covered;
  // The tail past the stream's end (inside the advertised size) reads as zeros.
  if (covered < length && end >= exp.size) {
    ex.push({ offset: end, length: offset + length - end, zero: true });
  }
  return merge(ex);
}

/** A structured READ reply: data chunks, and hole chunks for zero runs (unless DF). */
async function structuredRead(req: Request, exp: Export, backend: Backend): Promise<Uint8Array> {
  const data = await readPadded(backend, exp, req.offset, req.length);
  const parts: Uint8Array[][] = [];
  const dataChunk = (from: number, to: number) => {
    const off = new Uint8Array(8);
    new DataView(off.buffer).setBigUint64(0, BigInt(req.offset + from));
    parts.push([off, data.subarray(from, to)]);
  };
  if (req.flags & CMD_FLAG_DF) {
    dataChunk(0, req.length);
  } else {
    let pending = 0; // start of data not yet in a chunk
    for (const e of await paddedExtents(backend, exp, req.offset, req.length)) {
      const from = e.offset - req.offset, to = from + e.length;
      if (!e.zero || e.length < MIN_HOLE) continue;
      if (from > pending) dataChunk(pending, from);
      const hole = new Uint8Array(12);
      const dv = new DataView(hole.buffer);
      dv.setBigUint64(0, BigInt(e.offset));
      dv.setUint32(8, e.length);
      parts.push([hole]);
      pending = to;
    }
    if (pending < req.length) dataChunk(pending, req.length);
  }
  const out: Uint8Array[] = [];
  parts.forEach((p, i) => {
    const type = p.length === 2 ? REPLY_TYPE_OFFSET_DATA : REPLY_TYPE_OFFSET_HOLE;
    out.push(...chunk(req.cookie, i === parts.length - 1 ? REPLY_FLAG_DONE : 0, type, p));
  });
  if (!parts.length) out.push(...chunk(req.cookie, REPLY_FLAG_DONE, REPLY_TYPE_NONE, []));
  return concatBytes(...out);
}

/** A BLOCK_STATUS reply for `base:allocation`: zero runs are holes that read as zeros. */
async function blockStatus(req: Request, exp: Export, backend: Backend): Promise<Uint8Array> {
  let ex = await paddedExtents(backend, exp, req.offset, req.length);
  if (req.flags & CMD_FLAG_REQ_ONE) ex = ex.slice(0, 1);
  const p = new Uint8Array(4 + 8 * ex.length);
  const dv = new DataView(p.buffer);
  dv.setUint32(0, ALLOCATION_ID);
  ex.forEach((e, i) => {
    dv.setUint32(4 + 8 * i, e.length);
    dv.setUint32(8 + 8 * i, e.zero ? STATE_HOLE | STATE_ZERO : 0);
  });
  return concatBytes(...chunk(req.cookie, REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, [p]));
}

/** Runs a checked request and sends its reply. */
async function run(req: Request, session: Session, backend: Backend, send: Send): Promise<void> {
  const ov = backend.overlay;
  const exp = session.exp;
  let reply: Uint8Array;
  try {
    switch (req.type) {
      case CMD_READ:
        reply = session.structured
          ? await structuredRead(req, exp, backend)
          : simpleReply(req.cookie, 0, await readPadded(backend, exp, req.offset, req.length));
        break;
      case CMD_BLOCK_STATUS:
        reply = await blockStatus(req, exp, backend);
        break;
      case CMD_WRITE:
        await ov!.write(exp.stream, req.offset, req.payload!);
        if (req.flags & CMD_FLAG_FUA) await ov!.flush();
        reply = simpleReply(req.cookie, 0);
        break;
      case CMD_TRIM:
      case CMD_WRITE_ZEROES:
        await ov!.writeZeroes(exp.stream, req.offset, req.length);
        if (req.flags & CMD_FLAG_FUA) await ov!.flush();
        reply = simpleReply(req.cookie, 0);
        break;
      default: // CMD_FLUSH
        await ov?.flush();
        reply = simpleReply(req.cookie, 0);
    }
  } catch (e) {
    const usage = e instanceof HexzError && e.code === "usage";
    if (!usage) console.error(`hexz nbd: ${(e as Error).message}`);
    reply = requestError(session, req, usage ? EINVAL : EIO, (e as Error).message);
  }
  await send(reply).catch(() => {});
}
