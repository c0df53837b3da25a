/**
 * Finding the parent of a thin archive: the path recorded in the child (relative to the
 * child's directory, then to the working directory), then a file of the same name beside the
 * child, then any archive beside it with the recorded identity. The candidate must carry the recorded UUID and root hash;
 * anything else is an error naming the parent, never silently wrong or zero data.
 *
 * @module
 */
import { normalize } from "node:path";
import { HexzError } from "../errors.ts";
import { equalBytes } from "../format/bytes.ts";
import { formatUuid, type ParentRef } from "../format/header.ts";
import { toHex } from "../hash/blake3.ts";
import type { ByteSource } from "../io/source.ts";
import { dirOf } from "../io/atomic.ts";
import { type Archive, openArchive, type OpenOptions } from "./archive.ts";

/** Opens a location (path or URL) as a byte source; throws HexzError("not-found") if absent. */
export type SourceOpener = (location: string) => Promise<ByteSource>;

function baseName(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/** Where to look for a parent, in order. */
export function parentCandidates(ref: ParentRef, childName: string): string[] {
  const out: string[] = [];
  const isUrl = /^https?:\/\//.test(childName);
  if (ref.path) {
    if (isUrl) out.push(new URL(ref.path, childName).href);
    else if (ref.path.startsWith("/")) out.push(ref.path);
    else {
      // Relative to the child's directory (what hexz records), then to the working directory
      // (what earlier versions recorded: the base as typed).
      const dir = childName.includes("/") ? childName.slice(0, childName.lastIndexOf("/") + 1) : "";
      out.push(normalize(dir + ref.path));
      out.push(ref.path);
    }
    const beside = isUrl
      ? new URL(baseName(ref.path), childName).href
      : (childName.includes("/") ? childName.slice(0, childName.lastIndexOf("/") + 1) : "") +
        baseName(ref.path);
    out.push(beside);
  }
  return [...new Set(out)];
}

/**
 * A `resolveParent` hook for OpenOptions: opens parents (recursively, with the same options)
 * through `opener`, checking identity.
 */
export function parentResolver(
  opener: SourceOpener,
  opts: OpenOptions,
): (ref: ParentRef, child: Archive) => Promise<Archive> {
  return async (ref, child) => {
    const tried: string[] = [];
    // Every candidate is tried: a chain copied elsewhere still finds its parent beside the
    // child when the recorded path holds another archive. If none is the parent, the first
    // problem met is the error (a wrong archive, or one that could not be opened).
    let problem: Error | null = null;
    for (const loc of parentCandidates(ref, child.source.name)) {
      let src: ByteSource;
      try {
        src = await opener(loc);
      } catch (e) {
        if (e instanceof HexzError && e.code === "not-found") {
          tried.push(loc);
          continue;
        }
        throw e;
      }
      let parent: Archive;
      try {
        parent = await openArchive(src, opts);
      } catch (e) {
        // Not an archive, or a damaged one: another candidate may still be the parent.
        if (!(e instanceof HexzError) || (e.code !== "format" && e.code !== "corrupt")) throw e;
        problem ??= e;
        continue;
      }
      if (
        equalBytes(parent.header.uuid, ref.uuid) &&
        equalBytes(parent.header.rootHash, ref.rootHash)
      ) return parent;
      parent.close();
      problem ??= new HexzError(
        "parent",
        `${loc} is not the parent this archive was made from (expected archive ${
          formatUuid(ref.uuid)
        } with root ${toHex(ref.rootHash).slice(0, 16)}…): it was moved or replaced`,
      );
    }
    // Renamed within the child's directory: any archive there with the recorded identity.
    const found = await besideByIdentity(ref, child, opener, opts);
    if (found) return found;
    if (problem) throw problem;
    // Named with the child that needs it: up a chain, that is not the archive the user gave.
    const beside = child.source.path === undefined ? "" : ", then among the archives beside it";
    throw new HexzError(
      "parent",
      `parent archive ${ref.path || formatUuid(ref.uuid)} of ${child.source.name} not found ` +
        `(looked at ${tried.join(", ")}${beside})`,
    );
  };
}

/**
 * Opens (and so verifies) every parent of `a` now rather than on the first read that needs
 * one; on failure closes `a` and throws the error naming the parent.
 */
export async function openParents(a: Archive): Promise<Archive> {
  try {
    for (let cur: Archive | null = a; cur; cur = await cur.parent());
  } catch (e) {
    a.close();
    throw e;
  }
  return a;
}

/**
 * The local files `a` reads from: its own and its parents' (opening them if they are not yet
 * open); an output must not be one of them.
 */
export async function archivePaths(a: Archive): Promise<string[]> {
  const out: string[] = [];
  for (let cur: Archive | null = a; cur; cur = await cur.parent()) {
    if (cur.source.path !== undefined) out.push(cur.source.path);
  }
  return out;
}

/**
 * The archive in `child`'s directory (a local file's) that carries `ref`'s UUID and root hash,
 * if any: a parent renamed beside its child is still its parent. Asked only once the recorded
 * places have failed, so a directory is listed only for a chain that is otherwise broken.
 */
async function besideByIdentity(
  ref: ParentRef,
  child: Archive,
  opener: SourceOpener,
  opts: OpenOptions,
): Promise<Archive | null> {
  const path = child.source.path;
  if (path === undefined) return null;
  const dir = dirOf(path);
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".hxz"))
      .map((e) => e.name).sort();
  } catch {
    return null;
  }
  for (const name of names) {
    const loc = dir === "." ? name : `${dir}/${name}`;
    if (loc === path) continue;
    let a: Archive;
    try {
      a = await openArchive(await opener(loc), opts);
    } catch {
      continue; // not an archive, or locked, or damaged: not this one
    }
    if (equalBytes(a.header.uuid, ref.uuid) && equalBytes(a.header.rootHash, ref.rootHash)) {
      return a;
    }
    a.close();
  }
  return null;
}
