/**
 * The command-line driver: loads the subcommand named by the first argument (one file each),
 * parses the rest for it (cli/command.ts), runs it, and turns every failure into one line on
 * stderr with exit code 1 (failure) or 2 (usage).
 *
 * @module
 */
import { HexzError, LOCKED } from "../core/errors.ts";
import { VERSION } from "../core/version.ts";
import { type Command, commandHelp, parseCommand, suggest, usage } from "./command.ts";
import { envVar } from "./env.ts";
import { cleanUpOnInterrupt } from "./interrupt.ts";
import { oneLine } from "./line.ts";

/** Where the command line takes passwords from (cli/password.ts). */
const CLI_PASSWORD = " (HEXZ_PASSWORD or --password-file)";

/**
 * Every subcommand, in the order help lists them, and how to load it. A run loads only the
 * command it was asked for (each pulls in just the parts of hexz it uses; loading all of them
 * cost about 30-40 ms more on every run); `hexz --help` loads them all for their summaries.
 */
const COMMANDS: [string, () => Promise<Command>][] = [
  ["pack", async () => (await import("./pack.ts")).packCommand()],
  ["build", async () => (await import("./build.ts")).buildCommand()],
  ["convert", async () => (await import("./convert.ts")).convertCommand()],
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
  ["boot", async () => (await import("./boot.ts")).bootCommand()],
  ["snap", async () => (await import("./snap.ts")).snapCommand()],
  ["install", async () => (await import("./install.ts")).installCommand()],
  ["doctor", async () => (await import("./doctor.ts")).doctorCommand()],
  ["bench", async () => (await import("./bench.ts")).benchCommand()],
];

const enc = new TextEncoder();
function err(line: string) {
  Deno.stderr.writeSync(enc.encode(oneLine(line.replace(/\n$/, "")) + "\n"));
}
function print(text: string) {
  Deno.stdout.writeSync(enc.encode(text));
}

/** `hexz --help`: usage, the global options and every command with its summary. */
export async function programHelp(): Promise<string> {
  const commands = await Promise.all(COMMANDS.map(([, load]) => load()));
  const rows = commands.map((c) => [c.name, c.summary]);
  const w = Math.max(...rows.map(([u]) => u.length));
  return [
    "Usage: hexz [options] <command> [arguments]",
    "",
    "seekable, deduplicated, compressed snapshots of disks and memory",
    "",
    "Options:",
    "  -V, --version  print the version",
    "  -h, --help     show this help (hexz COMMAND --help for a command)",
    "",
    "Commands:",
    ...rows.map(([u, s]) => `  ${u.padEnd(w)}  ${s}`),
    "",
  ].join("\n");
}

/** Finds and parses the command, runs its action; throws usage errors. Resolves with the exit
 * code an action returned (`boot` passes on QEMU's), else nothing. */
async function dispatch(args: string[]): Promise<number | void> {
  const [name, ...rest] = args;
  if (name === undefined) throw usage("no command given (see hexz --help)");
  if (name === "-h" || name === "--help") return print(await programHelp());
  if (name === "-V" || name === "--version") return print(`hexz ${VERSION}\n`);
  if (name === "help") {
    if (rest[0] === undefined) return print(await programHelp());
    return dispatch([rest[0], "--help"]);
  }
  const entry = COMMANDS.find(([n]) => n === name);
  if (!entry) {
    const names = COMMANDS.map(([n]) => n);
    throw usage(
      name.startsWith("-")
        ? `unknown option '${name}' (options go after the command; see hexz --help)`
        : `unknown command '${name}'` + suggest(name, names),
    );
  }
  const command = await entry[1]();
  const { positional, flags, help } = parseCommand(command, rest);
  if (help) return print(commandHelp(command, "hexz"));
  const restore = command.writes ? cleanUpOnInterrupt() : () => {};
  try {
    const code = await command.handler?.(...positional, flags);
    if (typeof code === "number") return code;
  } finally {
    restore();
  }
}

/** Runs the CLI with `args`; returns the exit code instead of exiting (testable). */
export async function run(args: string[]): Promise<number> {
  try {
    return (await dispatch(args)) ?? 0;
  } catch (e) {
    if (e instanceof HexzError) {
      // The library names its own options; here the password comes from these.
      const i = e.code === "password" ? e.message.indexOf(LOCKED) : -1;
      const message = i < 0 ? e.message : `${e.message.slice(0, i)}${LOCKED}${CLI_PASSWORD}`;
      err(`hexz: ${message}`);
      return e.exitCode;
    }
    if (e instanceof Deno.errors.BrokenPipe) return 0; // `hexz cat ... | head`
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) {
      err(`hexz: ${(e as Error).message}`);
      return 1;
    }
    // A permission Deno was not given: its own message says which flag grants it.
    if (e instanceof Deno.errors.NotCapable) {
      const m = String((e as Error).message).split("\n")[0].trim();
      err(`hexz: ${m.charAt(0).toLowerCase()}${m.slice(1)}`);
      return 1;
    }
    // One line whatever the message (some runtime errors span several).
    const message = String((e as Error)?.message ?? e).split("\n")[0].trim();
    err(`hexz: internal error: ${message} (set HEXZ_DEBUG=1 for details)`);
    if (debugEnabled()) console.error(e);
    return 1;
  }
}

function debugEnabled(): boolean {
  return !!envVar("HEXZ_DEBUG");
}
