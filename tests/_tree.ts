/**
 * A sample tree for the tar tests (long names, a long symlink target, hard links, an empty
 * file, modes, owners, times) and a snapshot of a tree to compare two of them by: type, mode,
 * owner, size, content hash, symlink target, link count and modification time in ms.
 */
import { lchownSync, lutimesSync } from "node:fs";
import { pseudoRandom } from "./_tools.ts";

const enc = new TextEncoder();

/** 120 and 90 bytes: past ustar's 100-byte name field, and more than 155 + 100 together. */
export const LONG_DIR = "d".repeat(120);
export const LONG_NAME = `${LONG_DIR}/${"deep/".repeat(30)}${"n".repeat(90)}.txt`;
export const LONG_TARGET = `../${"t".repeat(150)}`;

export function isRoot(): boolean {
  return Deno.uid?.() === 0;
}

/** Builds the sample tree under `root` (which must exist). Times are whole seconds except
 * one (tar's ustar and GNU formats keep seconds). */
export function makeTree(root: string) {
  const mk = (p: string) => Deno.mkdirSync(`${root}/${p}`, { recursive: true });
  const write = (p: string, data: Uint8Array | string) =>
    Deno.writeFileSync(`${root}/${p}`, typeof data === "string" ? enc.encode(data) : data);
  mk("etc/conf.d");
  mk("empty-dir");
  mk(LONG_NAME.slice(0, LONG_NAME.lastIndexOf("/")));
  write("etc/hostname", "hexz\n");
  write("etc/conf.d/big.bin", pseudoRandom(300_000, 71));
  write("etc/conf.d/copy.bin", pseudoRandom(300_000, 71));
  write("empty-file", new Uint8Array(0));
  write("ünïcødé ✓.bin", "unicode");
  write(LONG_NAME, "a long name");
  Deno.linkSync(`${root}/etc/conf.d/big.bin`, `${root}/hard-link`);
  Deno.linkSync(`${root}/etc/conf.d/big.bin`, `${root}/${LONG_DIR}/hard-link-2`);
  Deno.symlinkSync("etc/hostname", `${root}/link-rel`);
  Deno.symlinkSync(LONG_TARGET, `${root}/link-long`);
  Deno.chmodSync(`${root}/etc/hostname`, 0o640);
  Deno.chmodSync(`${root}/empty-file`, 0o755);
  Deno.chmodSync(`${root}/empty-dir`, 0o700);
  if (isRoot()) lchownSync(`${root}/etc/hostname`, 1234, 5678);
  // Times last, deepest first (creating entries changes their directory's time).
  const paths = [...walk(root, "")].sort((a, b) => b.length - a.length);
  let t = 1_600_000_000;
  for (const p of paths) lutimesSync(`${root}/${p}`, t, t++);
  lutimesSync(`${root}/etc/hostname`, 1_600_000_000, 1_600_000_000.25);
}

function* walk(root: string, rel: string): Generator<string> {
  for (const e of Deno.readDirSync(rel ? `${root}/${rel}` : root)) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    yield p;
    if (e.isDirectory) yield* walk(root, p);
  }
}

async function digest(path: string): Promise<string> {
  const data = await Deno.readFile(path);
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(h.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Every entry under `root` (not the root itself), by path; times in whole seconds with
 * `seconds` (what tar's GNU format keeps). */
export async function snapshot(root: string, seconds = false): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of [...walk(root, "")].sort()) {
    const st = Deno.lstatSync(`${root}/${p}`);
    const mode = (st.mode! & 0o7777).toString(8);
    const owner = `${st.uid}:${st.gid}`;
    const ms = st.mtime!.getTime();
    const when = seconds ? Math.floor(ms / 1000) * 1000 : ms;
    if (st.isSymlink) out[p] = `l ${Deno.readLinkSync(`${root}/${p}`)} ${owner} ${when}`;
    else if (st.isDirectory) out[p] = `d ${mode} ${owner} ${when}`;
    else {
      const sum = await digest(`${root}/${p}`);
      out[p] = `f ${mode} ${owner} ${st.size} ${sum} links=${st.nlink} ${when}`;
    }
  }
  return out;
}

/** Runs a tool; throws with its stderr unless it succeeds. */
export async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const p = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const err = new TextDecoder().decode(p.stderr);
  if (!p.success) throw new Error(`${cmd} ${args.join(" ")} failed: ${err}`);
  return new TextDecoder().decode(p.stdout);
}
