/**
 * Checks of the values callers hand to the library's entry points (mod.ts), so that a value of
 * the wrong type (`open(123)`, `inspect(undefined)`, a `base` that is not an archive) is a usage
 * error naming the call and the value, not a TypeError from somewhere inside. Only the types are
 * checked here; each entry point still checks the values it accepts.
 *
 * @module
 */
import { HexzError } from "./errors.ts";
import type { ByteSource } from "./io/source.ts";
import type { Archive } from "./read/archive.ts";

/** A value as a message names it: "undefined", "the number 123", "an object". */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  switch (typeof v) {
    case "undefined":
      return "undefined";
    case "string":
      return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
    case "number":
    case "bigint":
    case "boolean":
      return `the ${typeof v} ${String(v)}`;
    case "function":
      return "a function";
    case "symbol":
      return "a symbol";
    default:
      return v instanceof Uint8Array ? "a Uint8Array" : "an object";
  }
}

function wrong(what: string, expected: string, v: unknown): HexzError {
  return new HexzError("usage", `${what}: expected ${expected}, got ${describeValue(v)}`);
}

/** Whether `v` has what a ByteSource has: a size, a name, `read` and `close`. */
export function isByteSource(v: unknown): v is ByteSource {
  const s = v as Partial<ByteSource> | null;
  return typeof v === "object" && s !== null && typeof s.read === "function" &&
    typeof s.close === "function" && typeof s.name === "string" &&
    Number.isSafeInteger(s.size) && s.size! >= 0;
}

/** Whether `v` looks like an Archive (from `open` or `openArchive`). */
function isArchive(v: unknown): v is Archive {
  const a = v as Partial<Archive> | null;
  return typeof v === "object" && a !== null && typeof a.read === "function" &&
    typeof a.close === "function" && typeof a.header === "object" && a.header !== null &&
    isByteSource(a.source);
}

/** Throws a usage error unless `v` is a string (a path, or `expected`). */
export function expectString(v: unknown, what: string, expected = "a path"): asserts v is string {
  if (typeof v !== "string") throw wrong(what, expected, v);
}

/** Like `expectString`, for an optional value. */
export function expectOptionalString(v: unknown, what: string): asserts v is string | undefined {
  if (v !== undefined) expectString(v, what);
}

/** Throws a usage error unless `v` is a path, a URL or a ByteSource. */
export function expectLocation(v: unknown, what: string): asserts v is string | ByteSource {
  if (typeof v !== "string" && !isByteSource(v)) {
    throw wrong(what, "a path, a URL or a ByteSource (size, name, read, close)", v);
  }
}

/** Throws a usage error unless `v` is an open Archive. */
export function expectArchive(v: unknown, what: string): asserts v is Archive {
  if (!isArchive(v)) throw wrong(what, "an Archive (from open)", v);
}

/** Throws a usage error unless `v` is an options object (or, when not `required`, undefined). */
export function expectOptions(v: unknown, what: string, required = false): void {
  if (v === undefined && !required) return;
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw wrong(what, "an options object", v);
  }
}

/**
 * `opts` without its keys whose value is undefined, so that spreading it over defaults keeps
 * the defaults (`{ ...defaults, ...opts }` would otherwise replace them with undefined).
 */
export function definedOptions<T extends object>(opts: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(opts).filter(([, v]) => v !== undefined),
  ) as Partial<T>;
}
