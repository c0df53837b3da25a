/**
 * Unix sockets we listen on: a socket file left by a process that died is removed before
 * listening again; one that still answers, or a path that is not a socket, is never touched.
 *
 * @module
 */
import { HexzError, osReason } from "../core/errors.ts";

/** Removes a stale socket at `path`; `who` names what may still listen there, for the error. */
export async function removeStaleSocket(path: string, who = "another server"): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw new HexzError("io", `${path}: ${osReason(e)}`);
  }
  if (!info.isSocket) throw new HexzError("exists", `${path}: exists and is not a socket`);
  try {
    (await Deno.connect({ transport: "unix", path })).close();
  } catch {
    await Deno.remove(path);
    return;
  }
  throw new HexzError("exists", `${path}: ${who} is listening on this socket`);
}
