/**
 * Messages on the terminal stay one line each: control characters inside them (a file named
 * with a newline, an escape sequence in a name) are shown escaped, as GNU tar and ls do,
 * instead of breaking the line or driving the terminal.
 *
 * @module
 */

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `s` with every C0 control character and DEL escaped (`\n`, `\x1b`). */
export function oneLine(s: string): string {
  return s.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x1f\x7f]/g,
    (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}
