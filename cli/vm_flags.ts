/**
 * The machine flags `boot` and `install` share: `--memory`, `--cpus`, `--timeout`, checked
 * and in the units the library takes.
 *
 * @module
 */
import { HexzError } from "../core/errors.ts";
import { parseCount, parseSize } from "./units.ts";

export interface VmFlags {
  memoryMiB?: number;
  cpus?: number;
  timeoutMs?: number;
}

export function parseVmFlags(o: { memory?: string; cpus?: string; timeout?: string }): VmFlags {
  const memory = o.memory !== undefined ? parseSize(o.memory, "--memory") : undefined;
  if (memory !== undefined && (memory < 1 << 20 || memory % (1 << 20) !== 0)) {
    throw new HexzError("usage", `--memory: '${o.memory}' is not a whole number of MiB`);
  }
  const cpus = o.cpus !== undefined ? parseCount(o.cpus, "--cpus") : undefined;
  if (cpus === 0) throw new HexzError("usage", "--cpus: must be at least 1");
  const timeout = o.timeout !== undefined ? parseCount(o.timeout, "--timeout") : undefined;
  return {
    memoryMiB: memory !== undefined ? memory / (1 << 20) : undefined,
    cpus,
    timeoutMs: timeout !== undefined ? timeout * 1000 : undefined,
  };
}
