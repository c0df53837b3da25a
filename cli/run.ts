/**
 * The command-line driver: builds the program from one file per subcommand, runs it, and
 * turns every failure into one line on stderr with exit code 1 (failure) or 2 (usage).
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import { HexzError } from "../core/errors.ts";
import { VERSION } from "../core/version.ts";

/**
 * Every subcommand, in the order help lists them, and how to load it. A run loads only the
 * command it was asked for (each pulls in just the parts of hexz it uses; loading all of them
 * cost about 30-40 ms more on every run); help and unknown names load them all.
 */
const COMMANDS: [string, () => Promise<Command>][] = [
  ["pack", async () => (await import("./pack.ts")).packCommand()],
  ["build", async () => (await import("./build.ts")).buildCommand()],
  ["inspect", async () => (await import("./inspect.ts")).inspectCommand()],
  ["extract", async () => (await import("./extract.ts")).extractCommand()],
  ["check", async () => (await import("./check.ts")).checkCommand()],
  ["cat", async () => (await import("./cat.ts")).catCommand()],
  ["commit", async () => (await import("./commit.ts")).commitCommand()],
  ["overlay", async () => (await import("./overlay.ts")).overlayCommand()],
  ["ls", async () => (await import("./ls.ts")).lsCommand()],
  ["diff", async () => (await import("./diff.ts")).diffCommand()],
  ["predict", async () => (await import("./predict.ts")).predictCommand()],
  ["serve", async () => (await import("./serve.ts")).serveCommand()],
  ["keygen", async () => (await import("./keygen.ts")).keygenCommand()],
  ["sign", async () => (await import("./sign.ts")).signCommand()],
  ["verify", async () => (await import("./verify.ts")).verifyCommand()],
  ["mount", async () => (await import("./mount.ts")).mountCommand()],
  ["unmount", async () => (await import("./mount.ts")).unmountCommand()],
];

const enc = new TextEncoder();
function err(line: string) {
  Deno.stderr.writeSync(enc.encode(line.endsWith("\n") ? line : line + "\n"));
}

/** The program with the command `name` only, or with every command (help, unknown names). */
export async function buildProgram(name?: string): Promise<Command> {
  const program = new Command("hexz")
    .description("seekable, deduplicated, compressed snapshots of disks and memory")
    .version(`hexz ${VERSION}`, "-V, --version")
    .showSuggestionAfterError(true);
  const wanted = COMMANDS.filter(([n]) => n === name);
  for (const [, load] of wanted.length ? wanted : COMMANDS) program.addCommand(await load());
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
  const program = await buildProgram(args[0]);
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
