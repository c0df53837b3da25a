/** Runs the real cli.ts as a subprocess, with the permissions the README documents. */
const CLI = new URL("../cli.ts", import.meta.url).pathname;

export interface CliResult {
  code: number;
  stdout: Uint8Array;
  out: string;
  err: string;
}

export async function hexz(
  args: string[],
  opts: { cwd?: string; perms?: string[]; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const perms = opts.perms ?? ["--allow-read", "--allow-write", "--allow-env"];
  const p = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", ...perms, CLI, ...args],
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...opts.env },
  }).output();
  return {
    code: p.code,
    stdout: p.stdout,
    out: new TextDecoder().decode(p.stdout),
    err: new TextDecoder().decode(p.stderr),
  };
}
