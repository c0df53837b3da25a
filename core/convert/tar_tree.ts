/**
 * The file table a sequence of tar entries makes, in the tar's order, with the rules of
 * extraction by GNU tar: a later entry for the same path replaces the earlier one (a
 * directory over a directory only updates its attributes; a non-empty directory is never
 * replaced), missing parent directories are created, and a hard link names an earlier member.
 * Regular files are given their place in the disk stream as they come (`add` says when one
 * does); the content of a replaced file stays in the stream, unreferenced. See docs/TAR.md.
 *
 * @module
 */
import { HexzError } from "../errors.ts";
import { type FileEntry, type Xattr, XATTR_LIMITS } from "../format/filetable.ts";
import type { TarEntry } from "../tar/reader.ts";

/** The most bytes a path or target may have in the file table. */
const MAX_NAME = 4096;

interface Slot {
  entry: FileEntry;
  /** Which input (shard) the entry came from. */
  input: number;
}

export interface TarTree {
  /**
   * Adds one entry of input `input`; `what` names it in errors. Returns true when the entry
   * is a regular file whose content goes next in the disk stream.
   */
  add(e: TarEntry, input: number, what: string): boolean;
  /** The table, in order, and how many of its entries came from each input. */
  finish(inputs: number): { entries: FileEntry[]; perInput: number[] };
}

const enc = new TextEncoder();

export function tarTree(): TarTree {
  const slots: (Slot | null)[] = [];
  const byPath = new Map<string, number>();
  /** Hard links by the file they name, in table order. */
  const links = new Map<string, string[]>();
  /** Entries directly under each directory. */
  const children = new Map<string, number>();
  let offset = 0;

  const parentOf = (p: string) => {
    const i = p.lastIndexOf("/");
    return i < 0 ? "" : p.slice(0, i);
  };
  const get = (p: string) => {
    const i = byPath.get(p);
    return i === undefined ? undefined : slots[i]!;
  };
  const append = (entry: FileEntry, input: number) => {
    byPath.set(entry.path, slots.length);
    slots.push({ entry, input });
    const parent = parentOf(entry.path);
    if (parent) children.set(parent, (children.get(parent) ?? 0) + 1);
  };
  /** Removes the entry at `p`; a file's first hard link takes over its content and the rest
   * of its links. */
  const remove = (p: string) => {
    const i = byPath.get(p)!;
    const { entry } = slots[i]!;
    slots[i] = null;
    byPath.delete(p);
    const parent = parentOf(p);
    if (parent) children.set(parent, children.get(parent)! - 1);
    if (entry.type === "file" && entry.hardLinkTo) {
      const list = links.get(entry.hardLinkTo)!;
      list.splice(list.indexOf(p), 1);
    } else if (entry.type === "file") {
      const list = links.get(p);
      links.delete(p);
      if (list?.length) {
        const [heir, ...rest] = list;
        const slot = get(heir)!;
        slot.entry = { ...entry, path: heir, hardLinkTo: undefined };
        for (const l of rest) get(l)!.entry.hardLinkTo = heir;
        if (rest.length) links.set(heir, rest);
      }
    }
  };

  return {
    add(e, input, what) {
      if (e.path === "") return false; // the root ("./"): not listed in a file table
      const path = e.path;
      if (enc.encode(path).length > MAX_NAME || enc.encode(e.target).length > MAX_NAME) {
        throw new HexzError("unsupported", `${what}: a name longer than ${MAX_NAME} bytes`);
      }
      // Parents: created when missing, as tar creates them; never a symlink or a file.
      const parts = path.split("/");
      for (let k = 1; k < parts.length; k++) {
        const dir = parts.slice(0, k).join("/");
        const s = get(dir);
        if (!s) {
          append({
            path: dir,
            type: "dir",
            mode: 0o755,
            mtimeMs: e.mtimeMs,
            uid: e.uid,
            gid: e.gid,
            size: 0,
            offset: 0,
            target: "",
          }, input);
        } else if (s.entry.type !== "dir") {
          throw new HexzError(
            "unsupported",
            `${what}: lies under ${JSON.stringify(dir)}, which is not a directory`,
          );
        }
      }
      const base: FileEntry = {
        path,
        type: "file",
        mode: e.mode,
        mtimeMs: e.mtimeMs,
        uid: e.uid,
        gid: e.gid,
        size: 0,
        offset: 0,
        target: "",
      };
      if (e.xattrs.size) base.xattrs = tarXattrs(e.xattrs, what);
      let entry: FileEntry;
      if (e.type === "hardlink") {
        if (e.target === path) throw new HexzError("unsupported", `${what}: a hard link to itself`);
        const t = get(e.target);
        if (!t) {
          throw new HexzError(
            "unsupported",
            `${what}: hard link to ${JSON.stringify(e.target)}, which is not earlier in the tar`,
          );
        }
        if (t.entry.type === "dir") {
          throw new HexzError("unsupported", `${what}: a hard link to a directory`);
        }
        // A hard link to a symlink is stored as a copy of the symlink (same target).
        entry = t.entry.type === "symlink"
          ? { ...t.entry, path }
          : { ...base, hardLinkTo: t.entry.hardLinkTo || t.entry.path };
      } else if (e.type === "symlink") {
        if (!e.target) throw new HexzError("unsupported", `${what}: a symlink with no target`);
        entry = { ...base, type: "symlink", target: e.target };
      } else if (e.type === "dir") {
        entry = { ...base, type: "dir" };
      } else if (e.type === "chardev" || e.type === "blockdev") {
        entry = { ...base, type: e.type, major: e.major, minor: e.minor };
      } else if (e.type === "fifo") {
        entry = { ...base, type: "fifo" };
      } else entry = { ...base, size: e.size, offset };

      const old = get(path);
      if (old) {
        if (old.entry.type === "dir" && entry.type === "dir") {
          // tar sets the attributes of a directory it meets again.
          Object.assign(old.entry, { mode: entry.mode, mtimeMs: entry.mtimeMs });
          Object.assign(old.entry, { uid: entry.uid, gid: entry.gid, xattrs: entry.xattrs });
          if (!entry.xattrs) delete old.entry.xattrs;
          return false;
        }
        if (old.entry.type === "dir" && (children.get(path) ?? 0) > 0) {
          throw new HexzError(
            "unsupported",
            `${what}: would replace a directory that is not empty`,
          );
        }
        remove(path);
      }
      append(entry, input);
      if (entry.type === "file" && entry.hardLinkTo) {
        const list = links.get(entry.hardLinkTo) ?? [];
        list.push(path);
        links.set(entry.hardLinkTo, list);
      }
      if (e.type !== "file") return false;
      offset += e.size;
      return true;
    },
    finish(inputs) {
      const live = slots.filter((s): s is Slot => s !== null);
      const perInput = new Array(inputs).fill(0);
      for (const s of live) perInput[s.input]++;
      return { entries: live.map((s) => s.entry), perInput };
    },
  };
}

/** A member's extended attributes as the file table keeps them (sorted by name), refused
 * with the member's name where Linux could not hold them. */
function tarXattrs(map: Map<string, Uint8Array>, what: string): Xattr[] {
  const out: Xattr[] = [];
  for (const [name, value] of map) {
    const len = enc.encode(name).length;
    if (len < 1 || len > XATTR_LIMITS.name || value.length > XATTR_LIMITS.value) {
      throw new HexzError(
        "unsupported",
        `${what}: xattr ${JSON.stringify(name.slice(0, 80))} is larger than Linux keeps`,
      );
    }
    out.push({ name, value });
  }
  return out.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}
