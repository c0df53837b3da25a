/**
 * Environment variables for the command line, read only when `--allow-env` granted them:
 * without it a variable reads as unset, and Deno never stops to ask on the terminal.
 *
 * @module
 */

/** The variable's value, or undefined when it is unset or not readable. */
export function envVar(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
