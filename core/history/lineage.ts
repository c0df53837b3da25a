/**
 * Lineage: the family tree of the archives in a directory, from their headers alone. Each
 * thin archive names its parent by UUID and root hash; the parent is looked for among the
 * directory's archives (by identity, whatever their names: as opening the child does), then at
 * the recorded path. Parents found elsewhere are `external`; a parent with the right UUID but
 * another root hash, or a recorded place holding another archive, is `replaced`; none at all
 * is `missing`.
 *
 * @module
 */
import { equalBytes } from "../format/bytes.ts";
import { formatUuid, type Header } from "../format/header.ts";
import { HexzError, osReason } from "../errors.ts";
import { fileSource } from "../io/source.ts";
import { openArchive } from "../read/archive.ts";
import { parentCandidates } from "../read/parent.ts";
import { toHex } from "../hash/blake3.ts";
import { expectString } from "../args.ts";

export type ParentStatus = "none" | "ok" | "external" | "replaced" | "missing";

/**
 * One `.hxz` file of the directory. When it cannot be read as an archive, `error` says why and
 * every field that would come from its header is null (unknown, not empty or zero).
 */
export interface LineageNode {
  path: string;
  uuid: string | null;
  rootHash: string | null;
  createdAt: string | null;
  message: string | null;
  /** Logical bytes of all streams. */
  logicalSize: number | null;
  fileSize: number | null;
  parentStatus: ParentStatus | null;
  /** The parent's path when found (in the directory or outside), else its recorded path. */
  parentPath: string | null;
  parentUuid: string | null;
  children: LineageNode[];
  /** Set (only) when the file could not be read as an archive. */
  error?: string;
}

async function readHeader(path: string): Promise<{ header: Header; size: number }> {
  const a = await openArchive(await fileSource(path));
  try {
    return { header: a.header, size: a.source.size };
  } finally {
    a.close();
  }
}

/** Builds the lineage forest of the `.hxz` files directly inside `dir`. */
export async function lineage(
  dir: string,
): Promise<{ roots: LineageNode[]; nodes: LineageNode[] }> {
  expectString(dir, "lineage", "a directory");
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(dir)) {
    // A web server has no directory listing to read: the archives are found by their headers.
    throw new HexzError("usage", `${dir}: ls reads a local directory, not a URL`);
  }
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".hxz")) names.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new HexzError("not-found", `${dir}: no such directory`);
    }
    if (e instanceof Deno.errors.NotADirectory) {
      throw new HexzError("io", `${dir}: not a directory (for one archive: hexz inspect)`);
    }
    throw new HexzError("io", `${dir}: ${osReason(e)}`);
  }
  names.sort();
  const nodes: LineageNode[] = [];
  const headers = new Map<LineageNode, Header>();
  for (const name of names) {
    const path = dir.endsWith("/") ? dir + name : `${dir}/${name}`;
    try {
      const { header, size } = await readHeader(path);
      const node: LineageNode = {
        path,
        uuid: formatUuid(header.uuid),
        rootHash: toHex(header.rootHash),
        createdAt: new Date(header.createdAtMs).toISOString(),
        message: header.message,
        logicalSize: header.streams[0].logicalSize + header.streams[1].logicalSize,
        fileSize: size,
        parentStatus: header.parent ? "missing" : "none",
        parentPath: header.parent?.path ?? null,
        parentUuid: header.parent ? formatUuid(header.parent.uuid) : null,
        children: [],
      };
      nodes.push(node);
      headers.set(node, header);
    } catch (e) {
      nodes.push({
        path,
        uuid: null,
        rootHash: null,
        createdAt: null,
        message: null,
        logicalSize: null,
        fileSize: null,
        parentStatus: null,
        parentPath: null,
        parentUuid: null,
        children: [],
        error: (e as Error).message,
      });
    }
  }
  const roots: LineageNode[] = [];
  for (const node of nodes) {
    const h = headers.get(node);
    const ref = h?.parent;
    if (!ref) {
      roots.push(node);
      continue;
    }
    const same = nodes.filter((n) => headers.get(n) && equalBytes(headers.get(n)!.uuid, ref.uuid));
    const exact = same.find((n) => equalBytes(headers.get(n)!.rootHash, ref.rootHash));
    if (exact) {
      node.parentStatus = "ok";
      node.parentPath = exact.path;
      exact.children.push(node);
      continue;
    }
    roots.push(node);
    if (same.length) {
      node.parentStatus = "replaced";
      node.parentPath = same[0].path;
      continue;
    }
    let occupied: string | null = null; // a recorded place holding another archive
    for (const cand of parentCandidates(ref, node.path)) {
      try {
        const { header } = await readHeader(cand);
        if (equalBytes(header.uuid, ref.uuid)) {
          node.parentStatus = equalBytes(header.rootHash, ref.rootHash) ? "external" : "replaced";
          node.parentPath = cand;
          break;
        }
        occupied ??= cand;
      } catch { /* not there or not an archive: keep looking */ }
    }
    if (node.parentStatus === "missing" && occupied) {
      node.parentStatus = "replaced";
      node.parentPath = occupied;
    }
  }
  return { roots, nodes };
}
