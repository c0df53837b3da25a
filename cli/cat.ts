import { Command } from "./command.ts";
import { findFile, readFile } from "../core/read/files.ts";
import { withArchive } from "./common.ts";
import { passwordFileOption } from "./password.ts";
import { parseSize } from "./units.ts";
import { HexzError } from "../core/errors.ts";

export function catCommand(): Command {
  return new Command("cat")
    .description("write raw bytes of a stream to stdout")
    .argument("<archive>", "archive (.hxz)")
    .option("--offset <n>", "first byte (sizes like 4K allowed)", "0")
    .option("--length <n>", "number of bytes (default: to the end)")
    .option("--memory", "read the memory stream instead of the disk")
    .option("--file <path>", "directory archives: read this file instead of a stream")
    .addOption(passwordFileOption())
    .addHelpText("after", "\nExample:\n  hexz cat vm.hxz --offset 1M --length 512 | xxd | head")
    .action(async (path: string, o) => {
      if (o.file && o.memory) {
        throw new HexzError("usage", "--file reads the directory tree: it takes no --memory");
      }
      const stream = o.memory ? "memory" : "disk";
      const offset = parseSize(o.offset, "--offset");
      const wanted = o.length !== undefined ? parseSize(o.length, "--length") : undefined;
      await withArchive(path, async (a) => {
        const entry = o.file ? await findFile(a, o.file) : null;
        if (entry && entry.type !== "file") {
          const what = {
            dir: "a directory",
            symlink: "a symlink",
            chardev: "a character device",
            blockdev: "a block device",
            fifo: "a FIFO",
          }[entry.type];
          throw new HexzError("usage", `${o.file}: is ${what}, not a file`);
        }
        if (!entry && stream === "memory" && a.size("memory") === 0) {
          throw new HexzError(
            "not-found",
            `${path}: has no memory stream (packed without --memory)`,
          );
        }
        const size = entry ? entry.size : a.size(stream);
        const length = wanted ?? Math.max(0, size - offset);
        // The whole range is checked before a byte is written.
        if (offset + length > size) {
          throw new HexzError(
            "usage",
            `bytes ${offset}..${offset + length} are outside ${
              entry ? o.file : `the ${stream} stream`
            } (${size} bytes): nothing written`,
          );
        }
        // Stream in 4 MiB pieces so large ranges never sit in memory at once.
        const piece = 4 * 1024 * 1024;
        for (let pos = offset; pos < offset + length; pos += piece) {
          const n = Math.min(piece, offset + length - pos);
          const data = entry ? await readFile(a, entry, pos, n) : await a.read(stream, pos, n);
          let done = 0;
          while (done < data.length) done += await Deno.stdout.write(data.subarray(done));
        }
        if (length === 0 && !entry) await a.read(stream, offset, 0); // a missing stream
      }, { passwordFile: o.passwordFile });
    });
}
