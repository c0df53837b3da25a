/**
 * Worker threads in general: how many a command uses (`--workers`) and whether a worker's
 * module can be loaded here at all (a single-file bundle does not carry them).
 *
 * @module
 */
import { HexzError } from "./errors.ts";

/** `workers` as asked (default: the machine's cores), checked to be 1..256. */
export function workerCount(workers: number | undefined): number {
  const n = workers ?? defaultWorkers();
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    throw new HexzError("usage", `--workers must be 1..256, got ${workers}`);
  }
  return n;
}

/** The default worker count: the machine's cores. */
export function defaultWorkers(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

/** False only for a local module file that is known to be missing. */
export function moduleBeside(url: URL): boolean {
  if (url.protocol !== "file:") return true;
  try {
    Deno.statSync(url);
    return true;
  } catch (e) {
    return !(e instanceof Deno.errors.NotFound);
  }
}
