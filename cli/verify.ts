import { Command } from "commander";
import { HexzError, readKeyFile, verifyArchive } from "../mod.ts";
import { out } from "./common.ts";

export function verifyCommand(): Command {
  return new Command("verify")
    .description("check an archive's signature and every block; exit 0 only if both are good")
    .argument("<key>", "public key (PEM, from 'hexz keygen')")
    .argument("<archive>", "archive (.hxz)")
    .option("--fast", "check the signature over the header only; do not read the blocks")
    .addHelpText("after", "\nExample:\n  hexz verify release.pub vm.hxz || echo 'do not use'")
    .action(async (keyPath: string, path: string, o) => {
      const r = await verifyArchive(path, await readKeyFile(keyPath), { fast: !!o.fast });
      if (!r.ok) {
        throw new HexzError(
          r.status === "corrupt" ? "corrupt" : "signature",
          `${path}: ${r.message}`,
        );
      }
      out(`${path}: ${r.message}`);
    });
}
