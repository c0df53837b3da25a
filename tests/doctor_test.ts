/** `hexz doctor` reports what really works here: its verdicts are compared with the machine. */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { hexz } from "./_cli.ts";
import { have } from "./_tools.ts";
import type { DoctorReport } from "../mod.ts";

const ALL = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-run",
  "--allow-net",
];

function fuseUsable(): boolean {
  // What mount needs: the device, and root for mount(2).
  try {
    Deno.openSync("/dev/fuse", { read: true, write: true }).close();
  } catch {
    return false;
  }
  return Deno.uid() === 0;
}

Deno.test("doctor: the kernels pass and each optional part is reported as it is", async () => {
  const r = await hexz(["doctor", "--json"], { perms: ALL });
  assertEquals(r.code, 0, r.err);
  const rep = JSON.parse(r.out) as DoctorReport;
  const check = (name: string) => rep.checks.find((c) => c.name === name)!;
  assertEquals(rep.checks.map((c) => c.name), [
    "kernels",
    "zstd",
    "workers",
    "dictionaries",
    "argon2id",
    "mount",
    "vm",
  ]);
  assertEquals(check("kernels").status, "ok");
  assertEquals(check("zstd").status, "ok");
  assertEquals(check("workers").status, "ok");
  assertMatch(check("workers").detail, new RegExp(`^${navigator.hardwareConcurrency} thread`));
  assertEquals(check("mount").status, fuseUsable() ? "ok" : "warn", check("mount").detail);
  if (have("qemu-system-x86_64")) {
    // The version QEMU itself prints, not just something shaped like one.
    const q = new Deno.Command("qemu-system-x86_64", { args: ["--version"], stdout: "piped" })
      .outputSync();
    const version = new TextDecoder().decode(q.stdout).match(/version (\d+\.\d+\.\d+)/)![1];
    assertMatch(check("vm").detail, new RegExp(`^QEMU version ${version.replaceAll(".", "\\.")}`));
  } else assertEquals(check("vm").status, "warn");
  assertEquals(rep.version, (await import("../core/version.ts")).VERSION);
  assertMatch(rep.runtime, new RegExp(`^Deno ${Deno.version.deno.replaceAll(".", "\\.")} `));
});

Deno.test("doctor: without the permissions a part needs, it says what to add", async () => {
  const r = await hexz(["doctor"], { perms: ["--allow-read", "--allow-env"] });
  assertEquals(r.code, 0, r.err);
  assertMatch(r.out, /^hexz \d+\.\d+\.\d+, Deno /);
  assertMatch(r.out, /^ok {4}kernels /m);
  assertMatch(r.out, /^warn {2}mount +not checked: mount needs --allow-ffi/m);
  assertMatch(r.out, /^warn {2}vm +not checked: run with --allow-run/m);
  assert(!r.out.includes("fail"), r.out);
});
