/**
 * The QMP client against a real QEMU (no guest: `-M none`, stopped), and the QEMU command line
 * and the checks on a snapshot's recorded machine.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { needs, tempDir } from "./_tools.ts";
import { HexzError } from "../core/errors.ts";
import { connectQmp } from "../vm/qmp.ts";
import { checkVmConfig, qemuArgs, startQemu } from "../vm/qemu.ts";

Deno.test(needs(["qemu-system-x86_64"], {
  name: "connectQmp negotiates, runs commands, reports QEMU's errors and sees it quit",
  async fn() {
    const [dir, done] = await tempDir("hexz-qmp-");
    const sock = `${dir}/q.sock`;
    const vm = startQemu(
      ["-M", "none", "-S", "-display", "none", "-qmp", `unix:${sock},server=on,wait=off`],
      { stdio: "null", timeoutMs: 60_000 },
    );
    try {
      const qmp = await connectQmp(sock, { retry: true, giveUp: vm.status });
      try {
        assertEquals(await qmp.execute("query-status"), {
          status: "prelaunch",
          singlestep: false,
          running: false,
        });
        // Commands are matched to their replies by id, also when several are in flight.
        const [kvm, name] = await Promise.all([
          qmp.execute("query-kvm"),
          qmp.execute("query-name"),
        ]);
        assert(typeof (kvm as { present: unknown }).present === "boolean");
        assertEquals(name, {});
        await assertRejects(() => qmp.execute("no-such-command"), HexzError, /^QMP: .*no-such/);
        await qmp.execute("quit");
        await qmp.closed;
        await assertRejects(() => qmp.execute("query-status"), HexzError, /closed/);
        assert(qmp.events.some((e) => e.event === "SHUTDOWN"), JSON.stringify(qmp.events));
      } finally {
        qmp.close();
      }
      assertEquals((await vm.status).code, 0);
      assertEquals(vm.timedOut(), false);
    } finally {
      await vm.end();
      await done();
    }
  },
}));

Deno.test("connectQmp names the socket it cannot reach", async () => {
  await assertRejects(
    () => connectQmp("/nonexistent/q.sock"),
    HexzError,
    /\/nonexistent\/q\.sock: cannot connect to QMP/,
  );
});

Deno.test(needs(["qemu-system-x86_64"], {
  name: "startQemu stops QEMU after its timeout",
  async fn() {
    const vm = startQemu(["-M", "none", "-S", "-display", "none"], {
      stdio: "null",
      timeoutMs: 500,
    });
    await vm.status;
    assertEquals(vm.timedOut(), true);
    await vm.end();
  },
}));

Deno.test("qemuArgs: the machine, the NBD disk, QMP sockets, then the user's arguments", () => {
  const args = qemuArgs({
    memoryMiB: 256,
    cpus: 2,
    machine: "q35",
    kernel: "/k",
    append: "console=ttyS0",
    extra: ["-no-reboot"],
  }, {
    accel: "tcg",
    drive: "nbd+unix:///?socket=/tmp/x/nbd.sock",
    qmp: ["/tmp/x/a.sock"],
    nographic: true,
    incoming: true,
  });
  assertEquals(args, [
    "-accel",
    "tcg",
    "-M",
    "q35",
    "-m",
    "256",
    "-smp",
    "2",
    "-drive",
    "file=nbd+unix:///?socket=/tmp/x/nbd.sock,format=raw,if=virtio,cache=writeback",
    "-qmp",
    "unix:/tmp/x/a.sock,server=on,wait=off",
    "-kernel",
    "/k",
    "-append",
    "console=ttyS0",
    "-nographic",
    "-incoming",
    "defer",
    "-no-reboot",
  ]);
});

Deno.test("checkVmConfig takes a recorded machine only when every field fits", () => {
  const good = { memoryMiB: 128, cpus: 1, machine: "q35", kernel: "/k", extra: ["-no-reboot"] };
  assertEquals(checkVmConfig(good, "a.hxz"), { ...good, initrd: undefined, append: undefined });
  for (
    const bad of [
      null,
      [],
      "q35",
      { ...good, memoryMiB: 0 },
      { ...good, memoryMiB: 1.5 },
      { ...good, cpus: "2" },
      { ...good, machine: undefined },
      { ...good, kernel: 7 },
      { ...good, append: "a\0b" },
      { ...good, extra: "-no-reboot" },
      { ...good, extra: [1] },
    ]
  ) {
    assertThrows(() => checkVmConfig(bad, "a.hxz"), HexzError, /^a\.hxz: VM metadata/);
  }
});
