/**
 * The assertions our tests use (deno std is unreachable here): thin wrappers over node:assert
 * with the familiar names.
 */
import nodeAssert from "node:assert";

export function assert(cond: unknown, msg?: string): asserts cond {
  nodeAssert.ok(cond, msg);
}

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  nodeAssert.match(actual, re, msg);
}

type ErrorClass = new (...args: never[]) => Error;

/** Asserts that `fn` rejects with an error of class `cls` whose message matches `re`. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  cls?: ErrorClass,
  re?: RegExp,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    if (cls && !(e instanceof cls)) throw new Error(`expected ${cls.name}, got ${e}`);
    if (re && !re.test((e as Error).message)) {
      throw new Error(`error message '${(e as Error).message}' does not match ${re}`);
    }
    return e as Error;
  }
  throw new Error("expected a rejection, but the promise resolved");
}

export function assertThrows(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  cls?: new (...args: any[]) => Error,
  re?: RegExp,
  what?: string,
): Error {
  const ctx = what ? `${what}: ` : "";
  try {
    fn();
  } catch (e) {
    if (cls && !(e instanceof cls)) throw new Error(`${ctx}expected ${cls.name}, got ${e}`);
    if (re && !re.test((e as Error).message)) {
      throw new Error(`${ctx}error message '${(e as Error).message}' does not match ${re}`);
    }
    return e as Error;
  }
  throw new Error(`${ctx}expected an exception, but none was thrown`);
}
