import { Command } from "./command.ts";
import { lineage, type LineageNode } from "../core/history/lineage.ts";
import { out } from "./common.ts";
import { formatSize } from "./units.ts";

function label(n: LineageNode, dir: string): string {
  const name = n.path.startsWith(dir) ? n.path.slice(dir.length).replace(/^\//, "") : n.path;
  if (n.error !== undefined) return `${name}  [unreadable: ${n.error}]`;
  const parts = [
    `${formatSize(n.logicalSize!)} in ${formatSize(n.fileSize!)}`,
    n.createdAt!.slice(0, 19).replace("T", " "),
  ];
  if (n.message) parts.push(JSON.stringify(n.message));
  let s = `${name}  (${parts.join(", ")})`;
  if (n.parentStatus === "external") s += `  [parent external: ${n.parentPath}]`;
  if (n.parentStatus === "replaced") s += `  [BROKEN: parent ${n.parentPath} was replaced]`;
  if (n.parentStatus === "missing") {
    s += `  [BROKEN: parent ${n.parentPath || n.parentUuid} missing]`;
  }
  return s;
}

function print(n: LineageNode, dir: string, prefix: string, last: boolean, root: boolean) {
  out(root ? label(n, dir) : `${prefix}${last ? "└── " : "├── "}${label(n, dir)}`);
  const next = root ? "" : prefix + (last ? "    " : "│   ");
  n.children.forEach((c, i) => print(c, dir, next, i === n.children.length - 1, false));
}

export function lsCommand(): Command {
  return new Command("ls")
    .description("show the lineage tree of the archives in a directory")
    .argument("[dir]", "directory", ".")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExample:\n  hexz ls images/")
    .action(async (dir: string, o) => {
      const { roots } = await lineage(dir);
      if (o.json) {
        out(JSON.stringify(roots, null, 2));
        return;
      }
      if (!roots.length) out(`${dir}: no archives`);
      for (const r of roots) print(r, dir, "", true, true);
    });
}
