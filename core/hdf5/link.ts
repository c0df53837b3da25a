/**
 * The members of a group. A version 1 group has a symbol table message (0x11: a B-tree of
 * symbol table nodes, names in a local heap); a newer one has link messages (0x06) in its
 * header ("compact" storage), or a link info message (0x02) pointing at a fractal heap
 * and a version 2 B-tree name index ("dense" storage, for more than 8 links by default). Soft
 * and external links are reported, not followed.
 *
 * @module
 */
import { bad, UNDEF } from "./cursor.ts";
import type { H5File } from "./h5file.ts";
import { readLocalHeap } from "./heap.ts";
import { openFractalHeap } from "./fractal_heap.ts";
import { btree2Records } from "./btree2.ts";
import { symbolTableLinks } from "./btree.ts";
import { type Message, MSG } from "./object_header.ts";

export type Link =
  | { name: string; kind: "hard"; address: number }
  | { name: string; kind: "soft" | "external" };

/** Whether the messages are a group's. */
export function isGroup(msgs: Message[]): boolean {
  return msgs.some((m) =>
    m.type === MSG.symbolTable || m.type === MSG.linkInfo || m.type === MSG.link
  );
}

/** The links of the group whose header holds `msgs`; `what` names the group. */
export async function groupLinks(f: H5File, msgs: Message[], what: string): Promise<Link[]> {
  const st = msgs.find((m) => m.type === MSG.symbolTable);
  if (st) {
    const c = f.over(st.data, `${what}: symbol table message`);
    const btree = f.abs(c.address("B-tree address"));
    const heap = await readLocalHeap(f, f.abs(c.address("local heap address")), what);
    const links = await symbolTableLinks(f, btree, heap, what);
    return links.map(([name, address]) =>
      address === UNDEF ? { name, kind: "soft" } : { name, kind: "hard", address }
    );
  }
  const info = msgs.find((m) => m.type === MSG.linkInfo);
  if (info) {
    const c = f.over(info.data, `${what}: link info message`);
    if (c.u8() !== 0) bad(c.what, "unknown version");
    const flags = c.u8();
    if (flags & 1) c.skip(8);
    const heapAt = f.abs(c.address("fractal heap address"));
    const index = f.abs(c.address("name index address"));
    if (heapAt !== UNDEF) {
      // Dense storage: the links are in a fractal heap, found through the name index.
      if (index === UNDEF) bad(c.what, "dense storage without a name index");
      const heap = await openFractalHeap(f, heapAt, what);
      const links: Link[] = [];
      const { records } = await btree2Records(f, index, [5], `${what}: link name index`);
      for (const rec of records) {
        links.push(parseLink(f, await heap.get(rec.subarray(4)), what));
      }
      return links;
    }
  }
  return msgs.filter((m) => m.type === MSG.link).map((m) => parseLink(f, m.data, what));
}

function parseLink(f: H5File, data: Uint8Array, what: string): Link {
  const c = f.over(data, `${what}: link message`);
  if (c.u8() !== 1) bad(c.what, "unknown version");
  const flags = c.u8();
  const type = flags & 0x08 ? c.u8() : 0;
  if (flags & 0x04) c.skip(8);
  if (flags & 0x10) c.u8();
  const nameLength = c.uint(1 << (flags & 3), "name length");
  const name = new TextDecoder().decode(c.take(nameLength));
  if (type === 0) return { name, kind: "hard", address: f.abs(c.address("object header")) };
  if (type === 1) return { name, kind: "soft" };
  if (type === 64) return { name, kind: "external" };
  bad(c.what, `unknown link type ${type}`);
}
