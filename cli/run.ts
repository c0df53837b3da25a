/**
 * The command-line driver: builds the program from one file per subcommand, runs it, and
 * turns every failure into one line on stderr with exit code 1 (failure) or 2 (usage).
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import { HexzError } from "../core/errors.ts";
import { VERSION } from "../core/version.ts";
import { buildCommand } from "./build.ts";
import { catCommand } from "./cat.ts";
import { commitCommand } from "./commit.ts";
import { diffCommand } from "./diff.ts";
import { lsCommand } from "./ls.ts";
import { mountCommand, unmountCommand } from "./mount.ts";
import { overlayCommand } from "./overlay.ts";
import { predictCommand } from "./predict.ts";
import { serveCommand } from "./serve.ts";
import { checkCommand } from "./check.ts";
import { extractCommand } from "./extract.ts";
import { inspectCommand } from "./inspect.ts";
import { packCommand } from "./pack.ts";
import { keygenCommand } from "./keygen.ts";
import { signCommand } from "./sign.ts";
import { verifyCommand } from "./verify.ts";

const enc = new TextEncoder();
function err(line: string) {
  Deno.stderr.writeSync(enc.encode(line.endsWith("\n") ? line : line + "\n"));
}

export function buildProgram(): Command {
  const program = new Command("hexz")
    .description("seekable, deduplicated, compressed snapshots of disks and memory")
    .version(`hexz ${VERSION}`, "-V, --version")
    .showSuggestionAfterError(true);
  const commands = [
    packCommand(),
    buildCommand(),
    inspectCommand(),
    extractCommand(),
    checkCommand(),
    catCommand(),
    commitCommand(),
    overlayCommand(),
    lsCommand(),
    diffCommand(),
    predictCommand(),
    serveCommand(),
    keygenCommand(),
    signCommand(),
    verifyCommand(),
    mountCommand(),
    unmountCommand(),
  ];
  for (const cmd of commands) {
    program.addCommand(cmd);
  }
  // Every command reports usage errors the same way (one line, exit 2), never by process.exit.
  const configure = (c: Command) => {
    c.exitOverride();
    c.configureOutput({
      writeErr: (s) => err(s),
      outputError: (s, write) => write(`hexz: ${s.replace(/^error: /, "").trimEnd()}\n`),
    });
    c.commands.forEach(configure);
  };
  configure(program);
  return program;
}

/** Runs the CLI with `args`; returns the exit code instead of exiting (testable). */
export async function run(args: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version end with exit code 0; every other parse failure is a usage error.
      return e.exitCode === 0 || e.code === "commander.helpDisplayed" ||
          e.code === "commander.version"
        ? 0
        : 2;
    }
    if (e instanceof HexzError) {
      err(`hexz: ${e.message}`);
      return e.exitCode;
    }
    if (e instanceof Deno.errors.BrokenPipe) return 0; // `hexz cat ... | head`
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) {
      err(`hexz: ${(e as Error).message}`);
      return 1;
    }
    err(`hexz: internal error: ${(e as Error)?.message ?? e} (set HEXZ_DEBUG=1 for details)`);
    if (debugEnabled()) console.error(e);
    return 1;
  }
}

function debugEnabled(): boolean {
  try {
    return !!Deno.env.get("HEXZ_DEBUG");
  } catch {
    return false; // no --allow-env
  }
}
