/**
 * `hexz serve`: publishes an archive over HTTP (plain paths or an S3 bucket) or NBD until
 * SIGINT or SIGTERM, then stops cleanly. Needs --allow-net and --allow-read (--allow-env to
 * take HEXZ_PASSWORD, --allow-ffi to keep disk waits off the event loop).
 *
 * @module
 */
import { Command } from "./command.ts";
import { HexzError, LOCKED } from "../core/errors.ts";
import { serveHttp } from "../serve/http.ts";
import { serveNbd } from "../serve/nbd.ts";
import { defaultBucketName } from "../serve/s3.ts";
import { type Archive, checkDaemonPermission, info, withArchive } from "./common.ts";
import { parseCount } from "./units.ts";
import { givenPassword, interactive, passwordFileOption, promptPassword } from "./password.ts";
import { open } from "../net/open.ts";
import { cachedReader } from "../ffi/cached_read.ts";
import { defaultOverlayPath, overlayWritten } from "../core/overlay/overlay.ts";
import { compactOptions, NO_COMPACT_HELP } from "./compaction.ts";

interface ServeFlags {
  port?: string;
  bind: string;
  s3?: boolean;
  bucket?: string;
  nbd?: boolean;
  socket?: string;
  overlay?: string;
  rw?: boolean;
  noCompact?: boolean;
  silent?: boolean;
  daemon?: boolean;
  passwordFile?: string;
}

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** One line on stderr, unless nobody listens any more (a daemon whose parent has gone). */
function report(line: string) {
  try {
    info(line);
  } catch { /* stderr is closed */ }
}

/**
 * Starts the same server as a detached process and returns once it listens (its first line
 * says where), or fails with the child's own error line if it exits first.
 */
async function daemonize(file: string, o: ServeFlags): Promise<void> {
  const flags = [
    ...(o.port !== undefined ? ["--port", o.port] : []),
    "--bind",
    o.bind,
    ...(o.s3 ? ["--s3"] : []),
    ...(o.bucket !== undefined ? ["--bucket", o.bucket] : []),
    ...(o.nbd ? ["--nbd"] : []),
    ...(o.socket !== undefined ? ["--socket", o.socket] : []),
    ...(o.overlay !== undefined ? ["--overlay", o.overlay] : []),
    ...(o.rw ? ["--rw"] : []),
    ...(o.noCompact ? ["--no-compact"] : []),
    ...(o.passwordFile !== undefined ? ["--password-file", o.passwordFile] : []),
  ];
  const perms = ["--allow-read", "--allow-write", "--allow-env", "--allow-net"];
  // With FFI the server never waits for the disk on its event loop (ffi/cached_read.ts).
  if (Deno.permissions.querySync({ name: "ffi" }).state === "granted") perms.push("--allow-ffi");
  // The detached server has no terminal: a password asked for here goes to it in its
  // environment, as HEXZ_PASSWORD would.
  const env: Record<string, string> = {};
  if (o.passwordFile === undefined && await givenPassword() === null && interactive()) {
    const a = await open(file, { lazyParents: true });
    const encrypted = !!a.header.encryption;
    a.close();
    if (encrypted) env.HEXZ_PASSWORD = await promptPassword(`password for ${file}: `);
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", ...perms, CLI, "serve", file, ...flags],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    detached: true,
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const timer = setTimeout(() => child.kill("SIGTERM"), 30_000);
  try {
    while (!text.includes("\n")) {
      const r = await reader.read();
      if (r.done) break;
      text += r.value;
    }
  } finally {
    clearTimeout(timer);
  }
  const line = text.split("\n")[0].trim();
  if (!line.startsWith("hexz: serving ")) {
    await child.status;
    throw new HexzError("io", line.replace(/^hexz: /, "") || "the server exited at start");
  }
  // The child keeps its end of the pipe; it stops mattering once we exit.
  reader.releaseLock();
  child.stderr.cancel().catch(() => {});
  child.unref();
  info(`${line} (pid ${child.pid})`, o.silent);
}

/** Resolves with the name of the first of SIGINT or SIGTERM to arrive. */
function untilSignal(): { signal: Promise<string>; dispose(): void } {
  const handlers: [Deno.Signal, () => void][] = [];
  const signal = new Promise<string>((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      const h = () => resolve(sig);
      handlers.push([sig, h]);
      Deno.addSignalListener(sig, h);
    }
  });
  return {
    signal,
    dispose: () => handlers.forEach(([sig, h]) => Deno.removeSignalListener(sig, h)),
  };
}

/** The paths the plain HTTP server answers for `a`. */
function paths(a: Archive): string[] {
  const out = ["disk", "memory"].filter((s) => a.size(s as "disk" | "memory") > 0).map((s) =>
    `/${s}`
  );
  if (a.header.fileTable.length) out.push("/files/<path>");
  return out;
}

function reject(flag: string, needs: string): never {
  throw new HexzError("usage", `${flag} only applies with ${needs}`);
}

export function serveCommand(): Command {
  return new Command("serve")
    .description("publish an archive over HTTP (ranges, ETags), as an S3 bucket, or over NBD")
    .argument("<archive>", "archive (.hxz), a path or an http(s) URL")
    .option("--port <n>", "TCP port (0 picks a free one; default 8080, NBD 10809)")
    .option("--bind <address>", "address to listen on", "127.0.0.1")
    .option("--s3", "publish as a path-style S3 bucket (keys disk, memory, files/...)")
    .option("--bucket <name>", "S3 bucket name (default: the archive's name)")
    .option("--nbd", "serve the disk stream over NBD instead of HTTP")
    .option("--socket <path>", "NBD: listen on this Unix socket instead of TCP")
    .option("--overlay <file>", "NBD: overlay file that keeps writes (--rw: default <archive>.hxo)")
    .option("--rw", "NBD: accept writes, kept in the overlay (vm.hxz: vm.hxo)")
    .option("--no-compact", `NBD --rw: ${NO_COMPACT_HELP}`)
    .option("--daemon", "serve in the background; return once it listens (prints the pid)")
    .option("-q, --silent", "print nothing but errors")
    .addOption(passwordFileOption())
    .addHelpText(
      "after",
      "\nExamples:\n  hexz serve vm.hxz --port 8080 & curl -r 0-511 http://127.0.0.1:8080/disk | xxd" +
        "\n  hexz serve vm.hxz --s3 & aws s3 ls s3://vm --endpoint-url http://127.0.0.1:8080 " +
        "--no-sign-request" +
        "\n  hexz serve vm.hxz --nbd --socket /tmp/vm.sock --daemon   # prints the pid; kill it to stop",
    )
    .action(async (file: string, o: ServeFlags) => {
      if (!o.nbd) {
        if (o.socket !== undefined) reject("--socket", "--nbd");
        if (o.overlay !== undefined) reject("--overlay", "--nbd");
        if (o.rw) reject("--rw", "--nbd");
      } else if (o.s3) {
        throw new HexzError("usage", "--s3 and --nbd cannot be used together");
      }
      if (o.bucket !== undefined && !o.s3) reject("--bucket", "--s3");
      if (o.noCompact && !(o.nbd && o.rw)) reject("--no-compact", "--nbd --rw");
      const port = o.port !== undefined ? parseCount(o.port, "--port") : undefined;
      if (port !== undefined && port > 65535) {
        throw new HexzError("usage", `--port: ${port} is not a TCP port (0-65535)`);
      }
      if (o.daemon) {
        checkDaemonPermission();
        return await daemonize(file, o);
      }
      const onError = (e: unknown) => report(`hexz: ${(e as Error)?.message ?? e}`);
      const stop = untilSignal();
      try {
        await withArchive(file, async (archive) => {
          if (archive.header.encryption && !archive.keys) {
            throw new HexzError("password", `${file}: ${LOCKED}`);
          }
          if (o.nbd) {
            const overlay = o.overlay ?? (o.rw ? defaultOverlayPath(file) : undefined);
            const hadOverlay = overlay !== undefined &&
              await Deno.lstat(overlay).then(() => true, () => false);
            const server = await serveNbd(archive, {
              socket: o.socket,
              hostname: o.socket === undefined ? o.bind : undefined,
              port: o.socket === undefined ? port : undefined,
              overlay,
              readOnly: !o.rw,
              compact: o.rw ? compactOptions(overlay!, !!o.noCompact, !!o.silent) : undefined,
            });
            info(
              `hexz: serving ${file} over NBD at ${server.address}` +
                (o.rw ? ` (writes kept in ${overlay})` : ""),
              o.silent,
            );
            await Promise.race([stop.signal, server.finished]);
            await server.close();
            // An overlay this server created and no client wrote to is not left behind.
            if (overlay !== undefined && !hadOverlay && !await overlayWritten(overlay)) {
              await Deno.remove(overlay).catch(() => {});
            }
            return;
          }
          const server = await serveHttp(archive, {
            hostname: o.bind,
            port: port ?? 8080,
            s3: o.s3,
            bucket: o.bucket,
            onError,
          });
          const host = server.addr.hostname.includes(":")
            ? `[${server.addr.hostname}]`
            : server.addr.hostname;
          const base = `http://${host}:${server.addr.port}`;
          info(
            o.s3
              ? `hexz: serving ${file} as S3 bucket '${
                o.bucket ?? defaultBucketName(archive.source.name)
              }' at ${base} (path-style, anonymous)`
              : `hexz: serving ${file} at ${base} (${paths(archive).join(", ")})`,
            o.silent,
          );
          await Promise.race([stop.signal, server.finished]);
          await server.shutdown();
        }, { passwordFile: o.passwordFile, cachedRead: cachedReader() ?? undefined });
      } finally {
        stop.dispose();
      }
    });
}
