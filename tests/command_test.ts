import { Command, commandHelp, Option, parseCommand, suggest } from "../cli/command.ts";
import { HexzError } from "../core/errors.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "./_assert.ts";

function sample(): Command {
  return new Command("pack")
    .description("pack things")
    .argument("<output>", "archive to create")
    .argument("[extra]", "something optional", "none")
    .option("--disk <path>", "disk image")
    .option("--block-size <size>", "block size", "64K")
    .addOption(new Option("--compression <codec>", "codec").choices(["lz4", "zstd"]).default("lz4"))
    .requiredOption("--base <archive>", "the base")
    .option("-f, --force", "overwrite")
    .option("-q, --silent", "quiet")
    .option("-m, --message <text>", "a note")
    .addHelpText("after", "\nExamples:\n  hexz pack x.hxz --disk a.img");
}

function usageError(args: string[], re: RegExp) {
  const e = assertThrows(() => parseCommand(sample(), args), HexzError) as HexzError;
  assertEquals(e.code, "usage");
  assertEquals(e.exitCode, 2);
  assert(!e.message.includes("\n"), e.message);
  assertMatch(e.message, re);
}

Deno.test("command line: options anywhere, = values, short flags together, defaults, --", () => {
  const r = parseCommand(sample(), [
    "-fq",
    "out.hxz",
    "--disk=a.img",
    "--base",
    "b.hxz",
    "-mhello world",
    "--disk",
    "c.img",
  ]);
  assertEquals(r.help, false);
  assertEquals(r.positional, ["out.hxz", "none"]);
  assertEquals(r.flags, {
    force: true,
    silent: true,
    disk: "c.img", // the last one given wins
    base: "b.hxz",
    message: "hello world",
    blockSize: "64K",
    compression: "lz4",
  });
  const s = parseCommand(sample(), ["--base", "b", "-m", "-x", "--", "-out", "--disk"]);
  assertEquals(s.positional, ["-out", "--disk"]);
  assertEquals(s.flags.message, "-x"); // a value option takes the next word, whatever it is
  assertEquals(s.flags.disk, undefined);
  assertEquals(parseCommand(sample(), ["-5", "--base=b"]).positional, ["-5", "none"]);
  assertEquals(parseCommand(sample(), ["x", "--help", "--bogus"]).help, true);
});

Deno.test("command line: every mistake is one usage line naming it", () => {
  usageError(
    ["x", "--base", "b", "--forse"],
    /^unknown option '--forse' \(did you mean --force\?\)$/,
  );
  usageError(["x", "--base", "b", "--bogus"], /^unknown option '--bogus'$/);
  usageError(["x", "--base", "b", "-z"], /unknown option '-z'/);
  usageError(
    ["x", "--base", "b", "--compression", "zsdt"],
    /'zsdt' is not one of lz4, zstd.*zstd\?/,
  );
  usageError(["x", "--base", "b", "--disk"], /option '--disk <path>' needs a value/);
  usageError(["x", "--base", "b", "--force=yes"], /'--force' takes no value/);
  usageError(["x"], /required option '--base <archive>' not given/);
  usageError(["--base", "b"], /missing required argument 'output'/);
  usageError(["x", "y", "z", "--base", "b"], /too many arguments for 'pack': expected 2, got 3/);
});

Deno.test("command line: help lists arguments, options with choices and defaults, examples", () => {
  const h = commandHelp(sample(), "hexz");
  assertMatch(h, /^Usage: hexz pack \[options\] <output> \[extra\]\n\npack things\n/);
  assertMatch(h, /\n {2}extra +something optional \(default: none\)\n/);
  assertMatch(h, /\n {6}--compression <codec> +codec \(choices: lz4, zstd; default: lz4\)\n/);
  assertMatch(h, /\n {2}-f, --force +overwrite\n/);
  assertMatch(h, /\n {6}--base <archive> +the base \(required\)\n/);
  assertMatch(h, /\n {2}-h, --help +show this help\n/);
  assertMatch(h, /Examples:\n {2}hexz pack x.hxz --disk a.img\n$/);
});

Deno.test("command line: suggestions only for near misses", () => {
  assertEquals(suggest("extrct", ["extract", "inspect"]), " (did you mean extract?)");
  assertEquals(suggest("frobnicate", ["extract", "inspect"]), "");
  assertEquals(suggest("pack", ["pack"]), "");
  assertThrows(() => new Option("force", "no dashes"), Error, /bad option flags/);
});

Deno.test("command line: any argv parses or is a usage error, never anything else", async () => {
  const { extractCommand } = await import("../cli/extract.ts");
  const { packCommand } = await import("../cli/pack.ts");
  const words = [
    "-",
    "--",
    "-f",
    "-fq",
    "-qz",
    "-m",
    "-mx",
    "--force",
    "--force=1",
    "--compression",
    "--compression=zstd",
    "--compression=x",
    "--level",
    "--disk",
    "--=",
    "---",
    "-5",
    "a.hxz",
    "out",
    "",
    "--help",
    "ünï",
  ];
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
  for (const c of [extractCommand(), packCommand(), sample()]) {
    for (let i = 0; i < 3000; i++) {
      const args = Array.from({ length: rnd(7) }, () => words[rnd(words.length)]);
      try {
        const r = parseCommand(c, args);
        assert(r.help || r.positional.length <= c.args.length, args.join(" "));
      } catch (e) {
        assert(e instanceof HexzError && e.code === "usage", `${args.join(" ")}: ${e}`);
        assert(!e.message.includes("\n"), e.message);
      }
    }
  }
});

Deno.test("command line: an optional variadic argument takes what follows --, or nothing", () => {
  const c = new Command("boot")
    .argument("<archive>", "archive")
    .argument("[qemu-args...]", "more")
    .option("--nographic", "no display");
  assertEquals(c.usage, "boot [options] <archive> [qemu-args...]");
  let r = parseCommand(c, ["vm.hxz", "--nographic", "--", "-no-reboot", "-m", "64"]);
  assertEquals(r.positional, ["vm.hxz", ["-no-reboot", "-m", "64"]]);
  assertEquals(r.flags.nographic, true);
  r = parseCommand(c, ["vm.hxz"]);
  assertEquals(r.positional, ["vm.hxz", []]);
  assertThrows(() => parseCommand(c, []), HexzError, /missing required argument 'archive'/);
});

Deno.test("command line: a variadic last argument takes the rest as an array", () => {
  const c = new Command("convert").argument("<paths...>", "inputs, then the output")
    .option("-f, --force", "overwrite");
  assertEquals(parseCommand(c, ["a.tar", "-f", "b.tar", "c.hxz"]).positional, [[
    "a.tar",
    "b.tar",
    "c.hxz",
  ]]);
  assertEquals(parseCommand(c, ["only"]).positional, [["only"]]);
  const e = assertThrows(() => parseCommand(c, ["-f"]), HexzError) as HexzError;
  assertMatch(e.message, /missing required argument 'paths'/);
  assertMatch(commandHelp(c, "hexz"), /Usage: hexz convert \[options\] <paths\.\.\.>/);
});
