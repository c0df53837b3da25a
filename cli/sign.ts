import { Command } from "commander";
import { readKeyFile, signArchive } from "../mod.ts";
import { out } from "./common.ts";

export function signCommand(): Command {
  return new Command("sign")
    .description("sign an archive with an Ed25519 private key (appends a signature trailer)")
    .argument("<key>", "private key (PEM, from 'hexz keygen' or 'openssl genpkey')")
    .argument("<archive>", "archive (.hxz)")
    .addHelpText(
      "after",
      "\nSigning again with the same key replaces its signature; other keys add theirs." +
        "\n\nExample:\n  hexz sign release.key vm.hxz && hexz verify release.pub vm.hxz",
    )
    .action(async (keyPath: string, path: string) => {
      const r = await signArchive(path, await readKeyFile(keyPath));
      const n = `${r.signatures} signature${r.signatures === 1 ? "" : "s"}`;
      out(`${path}: signed by key ${r.keyId} (${r.replaced ? "replaced" : "added"}; ${n})`);
    });
}
