import { Command } from "./command.ts";
import { generateKeyPair, saveKeyPair } from "../mod.ts";
import { out } from "./common.ts";

export function keygenCommand(): Command {
  return new Command("keygen").writesOutput()
    .description("create an Ed25519 key pair for signing archives (NAME.key and NAME.pub)")
    .option("-o, --output-dir <dir>", "where to write the keys", ".")
    .option("--name <name>", "base name of the key files", "hexz")
    .option("-f, --force", "overwrite existing key files")
    .addHelpText(
      "after",
      "\nExample:\n  hexz keygen --name release   # release.key (mode 0600), release.pub",
    )
    .action(async (o) => {
      const pair = await generateKeyPair();
      const paths = await saveKeyPair(pair, { dir: o.outputDir, name: o.name, force: !!o.force });
      out(`private key: ${paths.privatePath} (keep it secret)`);
      out(`public key:  ${paths.publicPath}`);
      out(`key id:      ${pair.keyId}`);
    });
}
