/**
 * The command-line parser: each subcommand declares its arguments and options with a small
 * builder (the method names commander users know), and `parseCommand` turns argv into the
 * action's call or a one-line usage error. It replaced the commander package, whose loading
 * was about 20 ms of every run (67 against 47 ms for Deno with node:fs and node:zlib alone,
 * 2026-11-23), and leaves the command line with no npm dependency.
 *
 * Conventions, as in getopt and commander: options may come before, between or after the
 * arguments; `--name value` and `--name=value`; `-f`, `-fq` (boolean flags together), `-m
 * text` and `-mtext`; `--` ends the options; an option given twice keeps the last value;
 * `-h, --help` on every command.
 *
 * @module
 */
import { HexzError } from "../core/errors.ts";

/** An option: its flags (`-f, --force`, `--level <n>`), help text, choices and default. */
export class Option {
  readonly short?: string;
  readonly long: string;
  /** The value's name (`n` in `--level <n>`), or undefined for a boolean flag. */
  readonly valueName?: string;
  /** The key in the parsed options: `--password-file` gives `passwordFile`. */
  readonly key: string;
  allowed?: readonly string[];
  defaultValue?: string;
  mandatory = false;

  constructor(readonly flags: string, readonly help: string) {
    const m = /^(?:-([A-Za-z]), )?--([a-z][a-z0-9-]*)(?: <([a-z-]+)>)?$/.exec(flags);
    if (!m) throw new Error(`bad option flags: ${flags}`);
    [, this.short, this.long, this.valueName] = m;
    this.key = this.long.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  }

  /** Accepts only these values. */
  choices(values: readonly string[]): this {
    this.allowed = values;
    return this;
  }

  /** The value when the option is not given. */
  default(value: string): this {
    this.defaultValue = value;
    return this;
  }

  /** How help and errors name it: `--level <n>`. */
  get name(): string {
    return this.valueName ? `--${this.long} <${this.valueName}>` : `--${this.long}`;
  }
}

interface Argument {
  name: string;
  help: string;
  required: boolean;
  defaultValue?: string;
  /** `<name...>`: takes the rest of the arguments (only last), the action gets an array. */
  variadic?: boolean;
}

/** What an action receives after its positional arguments: option values by key. */
// deno-lint-ignore no-explicit-any
export type Flags = Record<string, any>;
// deno-lint-ignore no-explicit-any
type Action = (...args: any[]) => unknown;

/** One subcommand: `new Command("extract").argument(...).option(...).action(...)`. */
export class Command {
  summary = "";
  readonly args: Argument[] = [];
  readonly options: Option[] = [];
  after = "";
  handler?: Action;
  /** Whether the action writes files, which an interrupt must not leave half written. */
  writes = false;

  constructor(readonly name: string) {}

  description(text: string): this {
    this.summary = text;
    return this;
  }

  /** `<name>` is required, `[name]` optional (only after the required ones); `<name...>`
   * takes every argument left (at least one), as an array. */
  argument(spec: string, help: string, defaultValue?: string): this {
    const m = /^([<[])([a-z-]+)(\.\.\.)?[>\]]$/.exec(spec);
    if (!m) throw new Error(`bad argument: ${spec}`);
    const variadic = !!m[3];
    this.args.push({ name: m[2], help, required: m[1] === "<", defaultValue, variadic });
    return this;
  }

  option(flags: string, help: string, defaultValue?: string): this {
    const o = new Option(flags, help);
    if (defaultValue !== undefined) o.default(defaultValue);
    return this.addOption(o);
  }

  requiredOption(flags: string, help: string): this {
    const o = new Option(flags, help);
    o.mandatory = true;
    return this.addOption(o);
  }

  addOption(o: Option): this {
    this.options.push(o);
    return this;
  }

  /** Text printed after the options in help (examples). */
  addHelpText(_where: "after", text: string): this {
    this.after = text;
    return this;
  }

  /** The action writes files: on SIGINT, SIGTERM or SIGHUP the unfinished ones are deleted
   * (cli/interrupt.ts). Other commands keep the runtime's default, which ends them at once. */
  writesOutput(): this {
    this.writes = true;
    return this;
  }

  action(fn: Action): this {
    this.handler = fn;
    return this;
  }

  /** `extract [options] <archive> <output>` */
  get usage(): string {
    const args = this.args.map((a) => {
      const n = a.variadic ? `${a.name}...` : a.name;
      return a.required ? `<${n}>` : `[${n}]`;
    });
    return [this.name, this.options.length ? "[options]" : "", ...args].filter(Boolean).join(" ");
  }
}

/** A usage error: one line, exit code 2. */
export function usage(message: string): HexzError {
  return new HexzError("usage", message);
}

/** Edit distance counting a swap of two neighbours as one edit (optimal string alignment). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** ` (did you mean X?)` for the closest candidate within 40% of the word's length, or "". */
export function suggest(word: string, candidates: string[]): string {
  let best = "", bestD = Infinity;
  for (const c of candidates) {
    const d = distance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best && bestD > 0 && bestD <= Math.max(1, Math.floor(word.length * 0.4))
    ? ` (did you mean ${best}?)`
    : "";
}

const HELP = new Option("-h, --help", "show this help");

function table(rows: [string, string][]): string[] {
  const w = Math.max(...rows.map(([l]) => l.length));
  return rows.map(([l, r]) => `  ${l.padEnd(w)}  ${r}`.trimEnd());
}

/** The command's help, as printed by `hexz CMD --help`. */
export function commandHelp(c: Command, program: string): string {
  const lines = [`Usage: ${program} ${c.usage}`, "", c.summary];
  if (c.args.length) {
    lines.push(
      "",
      "Arguments:",
      ...table(c.args.map((a) => [
        a.name,
        a.help + (a.defaultValue !== undefined ? ` (default: ${a.defaultValue})` : ""),
      ])),
    );
  }
  const describe = (o: Option): [string, string] => {
    const extra = [
      o.mandatory ? "required" : "",
      o.allowed ? `choices: ${o.allowed.join(", ")}` : "",
      o.defaultValue !== undefined ? `default: ${o.defaultValue}` : "",
    ].filter(Boolean).join("; ");
    return [
      (o.short ? `-${o.short}, ` : "    ") + o.name,
      o.help + (extra ? ` (${extra})` : ""),
    ];
  };
  lines.push("", "Options:", ...table([...c.options, HELP].map(describe)));
  return lines.join("\n") + (c.after ? "\n" + c.after : "") + "\n";
}

/**
 * Parses `args` (after the command's name) for `c`: the positional arguments and the option
 * values by key, defaults filled in. `help` is true when `-h`/`--help` was given (nothing else
 * is checked then). Throws a usage error naming the first problem.
 */
export function parseCommand(
  c: Command,
  args: string[],
): { positional: (string | string[])[]; flags: Flags; help: boolean } {
  const flags: Flags = {};
  const positional: string[] = [];
  const byLong = new Map(c.options.map((o) => [o.long, o]));
  const byShort = new Map(c.options.filter((o) => o.short).map((o) => [o.short!, o]));
  const set = (o: Option, value: string | undefined) => {
    if (!o.valueName) {
      if (value !== undefined) throw usage(`option '${o.name}' takes no value`);
      flags[o.key] = true;
      return;
    }
    if (value === undefined) throw usage(`option '${o.name}' needs a value`);
    if (o.allowed && !o.allowed.includes(value)) {
      throw usage(
        `option '${o.name}': '${value}' is not one of ${o.allowed.join(", ")}` +
          suggest(value, [...o.allowed]),
      );
    }
    flags[o.key] = value;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-h" || arg === "--help") return { positional, flags, help: true };
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const long = arg.slice(2, eq < 0 ? undefined : eq);
      const o = byLong.get(long);
      if (!o) {
        throw usage(
          `unknown option '--${long}'` +
            suggest(`--${long}`, [...byLong.keys()].map((l) => `--${l}`)),
        );
      }
      set(o, eq >= 0 ? arg.slice(eq + 1) : o.valueName ? args[++i] : undefined);
    } else if (arg.length > 1 && arg.startsWith("-") && !/^-\d/.test(arg)) {
      for (let j = 1; j < arg.length; j++) {
        const o = byShort.get(arg[j]);
        if (!o) throw usage(`unknown option '-${arg[j]}'`);
        if (o.valueName) {
          set(o, j + 1 < arg.length ? arg.slice(j + 1) : args[++i]);
          break;
        }
        set(o, undefined);
      }
    } else positional.push(arg);
  }
  for (const o of c.options) {
    if (flags[o.key] === undefined && o.defaultValue !== undefined) flags[o.key] = o.defaultValue;
    if (o.mandatory && flags[o.key] === undefined) {
      throw usage(`required option '${o.name}' not given`);
    }
  }
  const need = c.args.filter((a) => a.required).length;
  if (positional.length < need) {
    throw usage(`missing required argument '${c.args[positional.length].name}'`);
  }
  const last = c.args[c.args.length - 1];
  if (last?.variadic) {
    return {
      positional: [...positional.slice(0, c.args.length - 1), positional.slice(c.args.length - 1)],
      flags,
      help: false,
    };
  }
  if (positional.length > c.args.length) {
    throw usage(
      `too many arguments for '${c.name}': expected ${c.args.length}, got ${positional.length}`,
    );
  }
  for (let i = positional.length; i < c.args.length; i++) positional.push(c.args[i].defaultValue!);
  return { positional, flags, help: false };
}
