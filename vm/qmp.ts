/**
 * A small client for the QEMU Machine Protocol (QMP) on a Unix socket: JSON objects, one a line.
 * QEMU greets first; `qmp_capabilities` leaves negotiation mode; then each command gets one
 * reply (`return` or `error`) carrying the `id` it was sent with, and events arrive in between.
 *
 * @module
 */
import { HexzError } from "../core/errors.ts";

/** A QMP connection. */
export interface Qmp {
  /** Runs a command and resolves with its `return` value; rejects with QEMU's error text. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown>;
  /** Events received so far (`{event, data, timestamp}`), oldest first. */
  readonly events: QmpEvent[];
  /** Settles when QEMU closes the connection (it quit or was killed). */
  readonly closed: Promise<void>;
  close(): void;
}

export interface QmpEvent {
  event: string;
  data?: unknown;
}

export interface QmpConnectOptions {
  /** Give up connecting (and waiting for the greeting) after this long (default 30 s). */
  timeoutMs?: number;
  /** Keep retrying while the socket does not exist yet or refuses (QEMU is starting). */
  retry?: boolean;
  /** Stop retrying when this settles (the QEMU process exited). */
  giveUp?: Promise<unknown>;
  /** Each command's reply must come within this long (default 60 s). */
  commandTimeoutMs?: number;
}

const encoder = new TextEncoder();
/** Resolves after `ms` milliseconds. */
export const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connects to the QMP socket at `path`, reads the greeting and negotiates capabilities. */
export async function connectQmp(path: string, opts: QmpConnectOptions = {}): Promise<Qmp> {
  const until = Date.now() + (opts.timeoutMs ?? 30_000);
  let gone = false;
  opts.giveUp?.then(() => gone = true, () => gone = true);
  let conn: Deno.UnixConn | null = null;
  for (;;) {
    try {
      conn = await Deno.connect({ transport: "unix", path });
      break;
    } catch (e) {
      if (!opts.retry || gone || Date.now() > until) {
        throw new HexzError(
          e instanceof Deno.errors.NotFound ? "not-found" : "io",
          `${path}: cannot connect to QMP: ${(e as Error).message}`,
        );
      }
      await delay(50);
    }
  }
  const qmp = client(conn, path, opts.commandTimeoutMs ?? 60_000);
  try {
    await withTimeout(qmp.greeting, until - Date.now(), `${path}: no QMP greeting`);
    await qmp.execute("qmp_capabilities");
  } catch (e) {
    qmp.close();
    throw e;
  }
  return qmp;
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HexzError("io", message)), Math.max(ms, 0));
    }),
  ]).finally(() => clearTimeout(timer));
}

function client(conn: Deno.UnixConn, path: string, commandTimeoutMs: number) {
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  const events: QmpEvent[] = [];
  let nextId = 1;
  let greeted: () => void = () => {};
  let failGreeting: (e: Error) => void = () => {};
  const greeting = new Promise<void>((resolve, reject) => {
    greeted = resolve;
    failGreeting = reject;
  });
  greeting.catch(() => {});
  let isClosed = false;

  function handle(line: string) {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line);
    } catch {
      return; // not QMP: ignored
    }
    if (typeof msg !== "object" || msg === null) return;
    if ("QMP" in msg) return greeted();
    if (typeof msg.event === "string") {
      events.push({ event: msg.event, data: msg.data });
      return;
    }
    const waiter = typeof msg.id === "number" ? pending.get(msg.id) : undefined;
    if (!waiter) return;
    pending.delete(msg.id as number);
    if ("error" in msg) {
      const err = msg.error as { desc?: unknown; class?: unknown } | null;
      const desc = typeof err?.desc === "string" ? err.desc : JSON.stringify(msg.error);
      waiter.reject(new HexzError("io", `QMP: ${desc}`));
    } else waiter.resolve(msg.return);
  }

  const closed = (async () => {
    const lines = conn.readable.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    try {
      for (;;) {
        const r = await lines.read();
        if (r.done) break;
        buf += r.value;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          handle(buf.slice(0, nl).trim());
          buf = buf.slice(nl + 1);
        }
        if (buf.length > 16 << 20) break; // a line that never ends is not QMP
      }
    } catch { /* closed */ }
    isClosed = true;
    const gone = new HexzError("io", `${path}: QMP connection closed`);
    failGreeting(gone);
    for (const w of pending.values()) w.reject(gone);
    pending.clear();
  })();

  return {
    greeting,
    events,
    closed,
    execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
      if (isClosed) return Promise.reject(new HexzError("io", `${path}: QMP connection closed`));
      const id = nextId++;
      const reply = new Promise<unknown>((resolve, reject) => {
        pending.set(id, { resolve, reject });
      });
      const msg = JSON.stringify(
        args ? { execute: command, arguments: args, id } : {
          execute: command,
          id,
        },
      );
      const sent = (async () => {
        const bytes = encoder.encode(msg + "\n");
        let done = 0;
        while (done < bytes.length) done += await conn.write(bytes.subarray(done));
      })();
      return withTimeout(
        sent.then(() => reply),
        commandTimeoutMs,
        `QMP: no reply to ${command} within ${commandTimeoutMs / 1000} s`,
      ).finally(() => pending.delete(id));
    },
    close() {
      try {
        conn.close();
      } catch { /* already closed */ }
    },
  };
}

/**
 * Polls `query-migrate` every 50 ms until the migration has completed. A failed or cancelled
 * one throws `failed(detail)` (detail: ": QEMU's error-desc", or ""); `between` runs between
 * polls and throws to give up (a deadline, QEMU gone).
 */
export async function awaitMigration(
  qmp: Qmp,
  failed: (detail: string) => Error,
  between: () => Promise<void> | void,
): Promise<void> {
  for (;;) {
    const m = await qmp.execute("query-migrate") as { status?: string; "error-desc"?: string };
    if (m?.status === "completed") return;
    if (m?.status === "failed" || m?.status === "cancelled") {
      throw failed(m["error-desc"] ? `: ${m["error-desc"]}` : "");
    }
    await between();
    await delay(50);
  }
}
