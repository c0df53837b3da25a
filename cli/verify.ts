import { Command } from "./command.ts";
import { HexzError } from "../core/errors.ts";
import { readKeyFile, verifyArchive } from "../core/sign/signature.ts";
import { open, openSource } from "../net/open.ts";
import { out } from "./common.ts";
import { createProgress } from "./progress.ts";
import { importPublicKey } from "../core/sign/keys.ts";
import { givenPassword, passwordFileOption, promptPassword } from "./password.ts";

export function verifyCommand(): Command {
  return new Command("verify")
    .description("check an archive's signature and every block; exit 0 only if both are good")
    .argument("<key>", "public key (PEM, from 'hexz keygen')")
    .argument("<archive>", "archive (.hxz)")
    .option("--fast", "check the signature over the header only; do not read the blocks")
    .addOption(passwordFileOption())
    .option("-q, --silent", "no progress (without --fast every block is read)")
    .addHelpText("after", "\nExample:\n  hexz verify release.pub vm.hxz || echo 'do not use'")
    .action(async (keyPath: string, path: string, o) => {
      const key = await readKeyFile(keyPath);
      await importPublicKey(key, keyPath); // a wrong key is named by its file
      // The signature covers the header, which stays readable: --fast needs no password.
      // Checking every block of an encrypted archive needs it (HEXZ_PASSWORD,
      // --password-file, or asked on the terminal).
      let password = o.fast ? undefined : await givenPassword(o.passwordFile) ?? undefined;
      if (!o.fast && password === undefined && Deno.stdin.isTerminal()) {
        const a = await open(path, { lazyParents: true });
        const encrypted = !!a.header.encryption;
        a.close();
        if (encrypted) password = await promptPassword(`password for ${path}: `);
      }
      const progress = createProgress("verify", !!o.silent);
      const r = await verifyArchive(path, key, {
        fast: !!o.fast,
        password,
        openSource: (location) => openSource(location),
        onProgress: (d, t) => progress.update(d, t),
      }).finally(() => progress.finish());
      if (!r.ok) {
        throw new HexzError(
          r.status === "corrupt" ? "corrupt" : "signature",
          `${path}: ${r.message}`,
        );
      }
      out(`${path}: ${r.message}`);
    });
}
