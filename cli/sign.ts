import { Command, Option } from "./command.ts";
import { readKeyFile, signArchive } from "../mod.ts";
import { out } from "./common.ts";
import { createProgress } from "./progress.ts";
import { importPrivateKey } from "../core/sign/keys.ts";
import { givenPassword, passwordFileOption } from "./password.ts";

export function signCommand(): Command {
  return new Command("sign").writesOutput()
    .description("sign an archive with an Ed25519 private key (appends a signature trailer)")
    .argument("<key>", "private key (PEM, from 'hexz keygen' or 'openssl genpkey')")
    .argument("<archive>", "archive (.hxz)")
    .addOption(
      new Option(
        "--check <what>",
        "check before signing: index (header, index and sections), full (every block too), none",
      ).choices(["index", "full", "none"]).default("index"),
    )
    .option("--only", "keep only this key's signature (drops the others, damaged ones too)")
    .addOption(passwordFileOption())
    .option("-q, --silent", "no progress (--check full reads every block)")
    .addHelpText(
      "after",
      "\nSigning again with the same key replaces its signature; other keys add theirs." +
        "\nAn encrypted archive's index is checked only with its password (HEXZ_PASSWORD or" +
        "\n--password-file); its header is checked either way." +
        "\n\nExamples:\n  hexz sign release.key vm.hxz && hexz verify release.pub vm.hxz" +
        "\n  hexz sign --check full release.key vm.hxz\n  hexz sign --only release.key vm.hxz",
    )
    .action(async (keyPath: string, path: string, o) => {
      const password = await givenPassword(o.passwordFile) ?? undefined;
      const pem = await readKeyFile(keyPath);
      await importPrivateKey(pem, keyPath); // a wrong key is named by its file, before any work
      const progress = createProgress("check", !!o.silent);
      const r = await signArchive(path, pem, {
        check: o.check,
        only: !!o.only,
        password,
        onProgress: (d, t) => progress.update(d, t),
      }).finally(() => progress.finish());
      const n = `${r.signatures} signature${r.signatures === 1 ? "" : "s"}`;
      out(`${path}: signed by key ${r.keyId} (${r.replaced ? "replaced" : "added"}; ${n})`);
    });
}
