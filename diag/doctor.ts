/**
 * `hexz doctor`: what this machine and this run of hexz can do, each part checked for real
 * rather than assumed. The kernels compute known answers (a BLAKE3 test vector, LZ4 and zstd
 * round trips, FastCDC against its TypeScript reference); optional parts (worker threads,
 * zstd dictionaries, Argon2id, FUSE mounts, QEMU) are tried the way the commands that need them
 * use them. A failed kernel check means hexz cannot be trusted here; a missing optional part
 * only limits what can be done, and its line says what is needed.
 *
 * @module
 */
import { chooseAccel } from "../vm/qemu.ts";
import { VERSION } from "../core/version.ts";
import { blake3, toHex } from "../core/hash/blake3.ts";
import { lz4Compress, lz4DecompressInto } from "../core/codec/lz4.ts";
import { zstdCompress, zstdDecompressInto, zstdFastPath } from "../core/codec/zstd.ts";
import { findCuts } from "../core/chunk/fastcdc_wasm.ts";
import { DEFAULT_CDC, findCutsReference } from "../core/chunk/fastcdc.ts";
import { defaultWorkers, moduleBeside } from "../core/workers.ts";

export type CheckStatus = "ok" | "warn" | "fail";

export interface Check {
  /** What is checked: "kernels", "zstd", "workers", "dictionaries", "argon2id", "mount", "vm". */
  name: string;
  /** "fail" only for what every command relies on; "warn" for a missing optional part. */
  status: CheckStatus;
  /** What was found, or what is missing and how to get it, in one line. */
  detail: string;
}

export interface DoctorReport {
  version: string;
  runtime: string;
  platform: string;
  cores: number;
  checks: Check[];
}

/** BLAKE3 of the bytes i % 251 for i < 65537 (the official vectors' input), from b3sum 1.x. */
const B3_65537 = "7c99f9840a73dfcb6e5bfe4ff6d1558acab7e015640790c26411818bdbe17eca";
const B3_ABC = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85";

/** Deterministic, somewhat compressible bytes for the round trips. */
function sample(n: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = 2463534242;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = (x & 7) === 0 ? x >>> 24 : i >>> 9;
  }
  return b;
}

const equal = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((v, i) => v === b[i]);

/** Runs `fn`; a thrown error becomes a failed (or, when `optional`, warned) check. */
async function attempt(
  name: string,
  optional: boolean,
  fn: () => Promise<Omit<Check, "name">> | Omit<Check, "name">,
): Promise<Check> {
  try {
    return { name, ...await fn() };
  } catch (e) {
    const why = String((e as Error)?.message ?? e).split("\n")[0];
    return { name, status: optional ? "warn" : "fail", detail: why };
  }
}

function kernels(): Omit<Check, "name"> {
  const official = Uint8Array.from({ length: 65537 }, (_, i) => i % 251);
  if (
    toHex(blake3(official)) !== B3_65537 ||
    toHex(blake3(new TextEncoder().encode("abc"))) !== B3_ABC
  ) {
    return { status: "fail", detail: "BLAKE3 (WebAssembly) gives wrong hashes for known inputs" };
  }
  const data = sample(1 << 20);
  const packed = lz4Compress(data);
  const back = new Uint8Array(data.length);
  if (!packed) return { status: "fail", detail: "LZ4 (WebAssembly) did not compress a sample" };
  lz4DecompressInto(packed, back);
  if (!equal(back, data)) return { status: "fail", detail: "LZ4 (WebAssembly) round trip differs" };
  const cuts = findCuts(data, DEFAULT_CDC, true);
  const ref = findCutsReference(data, DEFAULT_CDC, true);
  if (cuts.length !== ref.length || cuts.some((c, i) => c !== ref[i])) {
    return { status: "fail", detail: "FastCDC (WebAssembly) cuts differ from the reference" };
  }
  return {
    status: "ok",
    detail: "WebAssembly BLAKE3, LZ4 and FastCDC give known answers (SIMD128)",
  };
}

function zstd(): Omit<Check, "name"> {
  const data = sample(256 * 1024);
  const frame = zstdCompress(data, 3);
  const back = new Uint8Array(data.length);
  zstdDecompressInto(frame, back);
  if (!equal(back, data)) return { status: "fail", detail: "zstd round trip differs" };
  return zstdFastPath()
    ? { status: "ok", detail: "native (node:zlib), one reused context per level" }
    : {
      status: "warn",
      detail: "native (node:zlib) through its one-shot calls: this runtime's zlib streams have " +
        "another shape, so blocks decode more slowly",
    };
}

function workers(): Omit<Check, "name"> {
  const n = defaultWorkers();
  return moduleBeside(new URL("../core/pack/worker.ts", import.meta.url))
    ? { status: "ok", detail: `${n} thread${n === 1 ? "" : "s"} by default (--workers N)` }
    : {
      status: "warn",
      detail: "running as one bundled file: pack and extract use one thread (run cli.ts for more)",
    };
}

async function dictionaries(): Promise<Omit<Check, "name">> {
  const { createZstdDictCodec } = await import("../core/codec/zstd_dict.ts");
  const dict = new TextEncoder().encode("hexz doctor dictionary sample ".repeat(40));
  const codec = await createZstdDictCodec(dict, 3);
  try {
    const data = new TextEncoder().encode("hexz doctor dictionary sample, again ".repeat(8));
    const back = new Uint8Array(data.length);
    codec.decompressInto(codec.compress(data), back);
    if (!equal(back, data)) return { status: "warn", detail: "zstd-codec round trip differs" };
  } finally {
    codec.close?.();
  }
  return { status: "ok", detail: "zstd-codec (WebAssembly) loads: --train-dict and its archives" };
}

async function argon2(): Promise<Omit<Check, "name">> {
  // A complete specifier, as in core/crypto/kdf.ts: hexz run from a URL has no import map.
  // deno-lint-ignore no-import-prefix
  const { argon2id } = await import("npm:hash-wasm@4.13.0");
  const h = await argon2id({
    password: "p",
    salt: new Uint8Array(16),
    parallelism: 1,
    iterations: 1,
    memorySize: 64,
    hashLength: 32,
    outputType: "hex",
  });
  if (typeof h !== "string" || h.length !== 64) {
    return { status: "warn", detail: "hash-wasm's Argon2id answered oddly" };
  }
  return { status: "ok", detail: "hash-wasm loads: --encrypt with the default key derivation" };
}

async function granted(name: "ffi" | "run" | "read" | "write" | "net" | "env"): Promise<boolean> {
  return (await Deno.permissions.query({ name })).state === "granted";
}

async function mount(): Promise<Omit<Check, "name">> {
  if (Deno.build.os !== "linux") return { status: "warn", detail: "FUSE mounts: Linux only" };
  if (!(await granted("ffi"))) {
    return { status: "warn", detail: "not checked: mount needs --allow-ffi (and root, /dev/fuse)" };
  }
  // As mount does: the device opened through libc (the runtime lets only --allow-all open
  // devices), and mount(2) needs root.
  const { libc, cString, errno, strerror, O_CLOEXEC, O_RDWR } = await import("../ffi/libc.ts");
  const lib = libc();
  const missing: string[] = [];
  const fd = lib.open(cString("/dev/fuse"), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    missing.push(
      `/dev/fuse: ${strerror(errno())} (modprobe fuse; in a container, pass the device)`,
    );
  } else lib.close(fd);
  if (lib.getuid() !== 0) missing.push("mount(2) needs root");
  return missing.length
    ? { status: "warn", detail: `mount unavailable: ${missing.join("; ")}` }
    : { status: "ok", detail: "/dev/fuse opens, running as root: mount and unmount work" };
}

/** First line of `cmd --version`, or null when it does not run. */
async function versionOf(cmd: string): Promise<string | null> {
  try {
    const r = await new Deno.Command(cmd, { args: ["--version"], stdout: "piped", stderr: "null" })
      .output();
    return r.success ? new TextDecoder().decode(r.stdout).split("\n")[0].trim() : null;
  } catch {
    return null;
  }
}

async function vm(): Promise<Omit<Check, "name">> {
  if (!(await granted("run"))) {
    return { status: "warn", detail: "not checked: run with --allow-run to look for QEMU" };
  }
  const qemu = await versionOf("qemu-system-x86_64");
  const img = await versionOf("qemu-img");
  if (!qemu) {
    return {
      status: "warn",
      detail: "no qemu-system-x86_64: VMs cannot boot from a mount or an NBD export here " +
        "(apt install qemu-system-x86)",
    };
  }
  const { accel, reason } = chooseAccel();
  const parts = [qemu.replace(/^QEMU emulator /, "QEMU "), img ? "qemu-img" : "no qemu-img"];
  return accel === "kvm" ? { status: "ok", detail: `${parts.join(", ")}, KVM (${reason})` } : {
    status: "warn",
    detail: `${parts.join(", ")}; guests run without acceleration (TCG): ${reason}`,
  };
}

/** Runs every check. Optional parts that are missing are warnings, never failures. */
export async function doctor(): Promise<DoctorReport> {
  const checks = [
    await attempt("kernels", false, kernels),
    await attempt("zstd", false, zstd),
    await attempt("workers", true, workers),
    await attempt("dictionaries", true, dictionaries),
    await attempt("argon2id", true, argon2),
    await attempt("mount", true, mount),
    await attempt("vm", true, vm),
  ];
  return {
    version: VERSION,
    runtime: `Deno ${Deno.version.deno} (V8 ${Deno.version.v8})`,
    platform: `${Deno.build.os} ${Deno.build.arch}`,
    cores: defaultWorkers(),
    checks,
  };
}
