/**
 * `hexz snap` and resuming: a guest counts on its console; it is snapshotted over QMP while
 * `hexz boot` runs it (it goes on counting), `hexz boot` stops it and everything it started on
 * SIGTERM, and `hexz boot` of the snapshot continues the count where it was, not from 0.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { needs, tempDir } from "./_tools.ts";
import { buildInitramfs, buildRootDisk, findKernel, INIT_PRELUDE } from "../vm/guest.ts";
import { hexz, VM_NEEDS } from "./_vm.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

const COUNTER = INIT_PRELUDE + `i=0
while true; do echo "HEXZ-COUNT $i"; i=$((i+1)); sleep 0.3; done
`;

/** `hexz boot` arguments that run the counting guest from `archive`, QMP at `qmp`. */
function counterBoot(
  archive: string,
  kernel: string,
  initrd: string,
  qmp: string,
  extra: string[] = [],
): string[] {
  return [
    archive,
    ...extra,
    "--kernel",
    kernel,
    "--initrd",
    initrd,
    "--append",
    "console=ttyS0 quiet panic=-1",
    "--memory",
    "128M",
    "--nographic",
    "--qmp",
    qmp,
    "--timeout",
    "300",
    "--",
    "-no-reboot",
  ];
}

/** A `hexz boot` in the background whose console is read as it comes. */
function bootInBackground(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", "--allow-all", CLI, "boot", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = (async () => {
    for await (const s of child.stdout.pipeThrough(new TextDecoderStream())) text += s;
  })();
  const stderr = new Response(child.stderr).text();
  const counts = () => [...text.matchAll(/HEXZ-COUNT (\d+)/g)].map((m) => Number(m[1]));
  return {
    child,
    counts,
    text: () => text,
    /** Waits until the console shows a count of at least `n`. */
    async until(n: number, timeoutMs = 120_000) {
      const end = Date.now() + timeoutMs;
      while (!counts().some((c) => c >= n)) {
        if (Date.now() > end) throw new Error(`no count ${n} in:\n${text.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    /** SIGTERM, then the exit status (SIGKILL after 30 s) and stderr. */
    async stop(): Promise<{ code: number; stderr: string; ms: number }> {
      const t0 = Date.now();
      child.kill("SIGTERM");
      const kill = setTimeout(() => child.kill("SIGKILL"), 30_000);
      const s = await child.status;
      clearTimeout(kill);
      await pump;
      return { code: s.code, stderr: await stderr, ms: Date.now() - t0 };
    },
  };
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

Deno.test(needs(VM_NEEDS, {
  name: "snap saves a running VM; it goes on; boot of the snapshot continues its count",
  async fn() {
    const [dir, done] = await tempDir("hexz-snap-");
    const vms: ReturnType<typeof bootInBackground>[] = [];
    try {
      const k = findKernel()!;
      await buildRootDisk(`${dir}/root.img`, "unused", new Uint8Array(1000), 16);
      let r = await hexz(["pack", `${dir}/root.hxz`, "--disk", `${dir}/root.img`, "-q"]);
      assertEquals(r.code, 0, r.stderr);
      const initrd = await buildInitramfs(dir, k, COUNTER);
      const qmp = `${dir}/vm.qmp`;
      const vm = bootInBackground(counterBoot(`${dir}/root.hxz`, k.kernel, initrd, qmp));
      vms.push(vm);
      await vm.until(5);
      const info = JSON.parse(await Deno.readTextFile(`${qmp}.hexz.json`));
      r = await hexz(["snap", qmp, `${dir}/snap.hxz`]);
      assertEquals(r.code, 0, r.stderr);
      assertMatch(r.stderr, /snap\.hxz: .* written \(state .*\); the VM goes on/);
      const atSnap = Math.max(...vm.counts());
      await vm.until(atSnap + 2, 60_000); // it goes on
      const s = await vm.stop();
      vms.pop();
      assert(s.ms < 20_000, `boot took ${s.ms} ms to stop`);
      assertMatch(s.stderr, /hexz: booted .*QMP at/);
      assert(!alive(info.pid), "QEMU is gone");
      for (const p of [qmp, `${qmp}.hexz.json`]) {
        assert(!(await Deno.stat(p).catch(() => null)), `${p} removed`);
      }

      r = await hexz(["inspect", `${dir}/snap.hxz`, "--json"]);
      const report = JSON.parse(r.stdout);
      assert(report.parent, "the snapshot is thin, on the archive booted");
      assert(report.streams[1].logicalSize > 0, "the snapshot has a memory stream");

      // The kernel and machine come from the snapshot's metadata.
      const resumed = bootInBackground([
        `${dir}/snap.hxz`,
        "--nographic",
        "--timeout",
        "300",
      ]);
      vms.push(resumed);
      await resumed.until(5, 120_000);
      const first = resumed.counts()[0];
      assert(first >= 5 && first <= atSnap + 1, `resumed at ${first}, saved near ${atSnap}`);
      const s2 = await resumed.stop();
      vms.pop();
      assertMatch(s2.stderr, /hexz: resumed .*snap\.hxz with (tcg|kvm)/);

      // --fresh boots the snapshot's disk (with its machine) without its saved state.
      const fresh = bootInBackground([
        `${dir}/snap.hxz`,
        "--fresh",
        "--overlay",
        `${dir}/fresh.hxo`,
        "--nographic",
        "--timeout",
        "300",
      ]);
      vms.push(fresh);
      await fresh.until(1, 120_000);
      assertEquals(fresh.counts()[0], 0);
      const s3 = await fresh.stop();
      vms.pop();
      assertMatch(s3.stderr, /hexz: booted .*snap\.hxz with/);
    } finally {
      for (const v of vms) await v.stop().catch(() => {});
      await done();
    }
  },
}));

Deno.test(needs(VM_NEEDS, {
  name: "snap refuses a socket that no hexz boot describes",
  async fn() {
    const [dir, done] = await tempDir("hexz-snap-");
    try {
      const r = await hexz(["snap", `${dir}/none.qmp`, `${dir}/s.hxz`]);
      assertEquals(r.code, 1);
      assertMatch(r.stderr, /^hexz: .*none\.qmp: not the QMP socket of a VM started by/);
      assertEquals(r.stderr.split("\n").length, 2);
      assert(!(await Deno.stat(`${dir}/s.hxz`).catch(() => null)));
    } finally {
      await done();
    }
  },
}));

Deno.test(needs(VM_NEEDS, {
  name: "snap of a VM booted from an encrypted archive: encrypted, and it resumes",
  async fn() {
    const [dir, done] = await tempDir("hexz-snap-");
    const vms: ReturnType<typeof bootInBackground>[] = [];
    try {
      const k = findKernel()!;
      await buildRootDisk(`${dir}/root.img`, "unused", new Uint8Array(1000), 16);
      await Deno.writeTextFile(`${dir}/pw`, "snap secret\n");
      const pw = ["--password-file", `${dir}/pw`];
      let r = await hexz([
        "pack",
        `${dir}/root.hxz`,
        "--disk",
        `${dir}/root.img`,
        "--encrypt",
        ...pw,
        "-q",
      ]);
      assertEquals(r.code, 0, r.stderr);
      const initrd = await buildInitramfs(dir, k, COUNTER);
      const qmp = `${dir}/vm.qmp`;
      const vm = bootInBackground(counterBoot(`${dir}/root.hxz`, k.kernel, initrd, qmp, pw));
      vms.push(vm);
      await vm.until(5);
      r = await hexz(["snap", qmp, `${dir}/snap.hxz`]);
      assertEquals(r.code, 1, "snap without the password");
      assertMatch(r.stderr, /^hexz: [^\n]*archive is encrypted: give the password[^\n]*\n$/);
      r = await hexz(["snap", qmp, `${dir}/snap.hxz`, ...pw]);
      assertEquals(r.code, 0, r.stderr);
      const atSnap = Math.max(...vm.counts());
      await vm.stop();
      vms.pop();
      r = await hexz(["inspect", `${dir}/snap.hxz`, "--json"]);
      const report = JSON.parse(r.stdout);
      assert(report.encryption, "the snapshot of an encrypted archive is encrypted");
      assert(report.streams[1].logicalSize > 0, "the snapshot has a memory stream");

      const resumed = bootInBackground([
        `${dir}/snap.hxz`,
        ...pw,
        "--nographic",
        "--timeout",
        "300",
      ]);
      vms.push(resumed);
      await resumed.until(5, 120_000);
      const first = resumed.counts()[0];
      assert(first >= 5 && first <= atSnap + 1, `resumed at ${first}, saved near ${atSnap}`);
      await resumed.stop();
      vms.pop();
    } finally {
      for (const v of vms) await v.stop().catch(() => {});
      await done();
    }
  },
}));
