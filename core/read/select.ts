/**
 * Choosing part of a directory archive's tree, as `tar -x` does with member names: a path
 * selects its entry and everything under it. Ancestors of what is chosen come along (so the
 * tree stays whole: every entry's directory before it), and a hard link whose other name is
 * not chosen gets the content itself.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import type { FileEntry } from "../format/filetable.ts";

/** `path` as the table spells paths: no leading `/` or `./`, no trailing `/`. */
function normalize(path: string): string {
  let p = path.replace(/\/+/g, "/");
  while (p.startsWith("./")) p = p.slice(2);
  p = p.replace(/^\/+/, "").replace(/\/+$/, "");
  return p === "." ? "" : p;
}

/**
 * The entries of `table` under any of `paths` (with their ancestor directories), in table
 * order. A path that names nothing in the table is an error naming it; `""`, `.` and `/`
 * select everything.
 */
export function selectEntries(table: FileEntry[], paths: readonly string[]): FileEntry[] {
  const wanted = paths.map((p) => [p, normalize(p)] as const);
  if (wanted.some(([, p]) => p === "")) return table;
  const under = (e: FileEntry, p: string) => e.path === p || e.path.startsWith(`${p}/`);
  for (const [given, p] of wanted) {
    if (!table.some((e) => under(e, p))) {
      throw new HexzError("not-found", `${given}: not in the archive`);
    }
  }
  const chosen = new Set<string>();
  for (const e of table) {
    if (!wanted.some(([, p]) => under(e, p))) continue;
    chosen.add(e.path);
    for (let i = e.path.lastIndexOf("/"); i > 0; i = e.path.lastIndexOf("/", i - 1)) {
      chosen.add(e.path.slice(0, i));
    }
  }
  // Hard links: the first chosen name of content whose stored name is not chosen holds it.
  const holder = new Map<string, string>();
  const out: FileEntry[] = [];
  for (const e of table) {
    if (!chosen.has(e.path)) continue;
    if (!e.hardLinkTo || chosen.has(e.hardLinkTo)) {
      out.push(e);
      continue;
    }
    const h = holder.get(e.hardLinkTo);
    if (h) out.push({ ...e, hardLinkTo: h });
    else {
      holder.set(e.hardLinkTo, e.path);
      out.push({ ...e, hardLinkTo: undefined });
    }
  }
  return out;
}
