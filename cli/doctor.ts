import { Command } from "./command.ts";
import { HexzError } from "../core/errors.ts";
import { out } from "./common.ts";

export function doctorCommand(): Command {
  return new Command("doctor")
    .description("check what hexz can do here: kernels, zstd, threads, FUSE, QEMU")
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      "\nExit status: 0 when every check passes or only optional parts are missing (warn), 1 when" +
        "\na kernel check fails.\n\nExample:\n  hexz doctor --json | jq -r '.checks[] | select(.status != \"ok\") | .detail'",
    )
    .action(async (o) => {
      const { doctor } = await import("../diag/doctor.ts");
      const r = await doctor();
      if (o.json) out(JSON.stringify(r, null, 2));
      else {
        out(`hexz ${r.version}, ${r.runtime}, ${r.platform}, ${r.cores} cores`);
        const w = Math.max(...r.checks.map((c) => c.name.length));
        for (const c of r.checks) out(`${c.status.padEnd(4)}  ${c.name.padEnd(w)}  ${c.detail}`);
      }
      const failed = r.checks.filter((c) => c.status === "fail");
      if (failed.length) {
        throw new HexzError(
          "unsupported",
          `doctor: ${failed.map((c) => c.name).join(", ")} failed: hexz cannot be trusted here`,
        );
      }
    });
}
