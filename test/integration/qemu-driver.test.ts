/**
 * The qemu driver on a real VM (qemu-system-x86_64 with TCG): boot to SSH on a loopback
 * forward, snapshots while running and stopped, revert, and the disk capability (offline
 * edit through qemu-storage-daemon + loop + mount). Needs root (loop devices, mounts, FUSE)
 * and QEMU; skipped, saying why, without them. The VM image is built once (about 1-5 min)
 * and cached; the VM's disk is a throw-away overlay on it. The guest's network is
 * `restrict=on`: the test talks to it over 127.0.0.1 only.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DriverHandle } from "../../src/drivers/driver.js";
import { QemuDriver } from "../../src/drivers/qemu.js";
import { createVmDir, runningPid, sshPortOf, vmLayout } from "../../src/drivers/qemu-vm.js";
import { ALICE } from "../../src/lab/image.js";
import { buildVmImage } from "../../src/lab/vm-image.js";
import { LifelineError } from "../../src/protocol/errors.js";
import { sshExec, type SshResult } from "../helpers/lab.js";

const SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const hasTool = (name: string) => SYS_PATH.split(":").some((d) => existsSync(join(d, name)));
const skip =
  process.geteuid?.() !== 0
    ? "needs root: loop devices, mounts, FUSE"
    : !hasTool("qemu-system-x86_64")
      ? "needs qemu-system-x86_64 (Debian package qemu-system-x86)"
      : !hasTool("qemu-storage-daemon")
        ? "needs qemu-storage-daemon (Debian package qemu-system-common)"
        : undefined;

const timings: Record<string, number> = {};
async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await work();
  } finally {
    timings[label] = Date.now() - t0;
  }
}

/** One password login as alice over real SSH on the VM's forwarded loopback port. */
const ssh = (port: number, command: string, timeoutMs = 10_000) => sshExec("127.0.0.1", ALICE.name, ALICE.password, command, timeoutMs, port);

/** Polls until alice can log in and run a command; TCG boots take about 30 s. */
async function waitForSsh(port: number, timeoutMs = 90_000): Promise<SshResult> {
  const deadline = Date.now() + timeoutMs;
  let last: SshResult = { connected: false, exitCode: null, stdout: "", stderr: "" };
  while (Date.now() < deadline) {
    last = await ssh(port, "id -un && cat /proc/cmdline", 8_000);
    if (last.connected && last.exitCode === 0) return last;
    await new Promise((r) => setTimeout(r, 1_000));
  }
  throw new Error(`no SSH login on 127.0.0.1:${port} within ${timeoutMs} ms (last: ${last.error ?? "no error"})`);
}

async function rejectsWith(work: Promise<unknown>, code: string): Promise<void> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(LifelineError);
  expect((err as LifelineError).code, (err as Error).message).toBe(code);
}

const OWNER_FILE = "test-owner";

/** VMs of test runs that died without their afterAll (SIGKILL, a crash): killed and removed. */
async function sweepStaleVms(): Promise<void> {
  for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
    if (!name.startsWith("lifeline-qemu-")) continue;
    const dir = join(tmpdir(), name);
    const owner = Number.parseInt(await readFile(join(dir, OWNER_FILE), "utf8").catch(() => ""), 10);
    if (!Number.isInteger(owner) || existsSync(`/proc/${owner}`)) continue;
    await new QemuDriver().disk.detach({ driver: "qemu", version: 1, ref: { dir, name: "stale" } }).catch(() => undefined);
    const pid = await runningPid(vmLayout(dir));
    if (pid) process.kill(pid, "SIGKILL");
    await rm(dir, { recursive: true, force: true });
  }
}

describe.skipIf(skip !== undefined)(`qemu driver${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const driver = new QemuDriver({ shutdownTimeoutMs: 60_000 });
  let dir: string;
  let handle: DriverHandle;
  let port: number;

  beforeAll(async () => {
    const image = await timed("vm image (build or cache)", () => buildVmImage());
    await sweepStaleVms();
    dir = await mkdtemp(join(tmpdir(), "lifeline-qemu-"));
    await writeFile(join(dir, OWNER_FILE), `${process.pid}\n`);
    await createVmDir(dir, image);
    handle = { driver: "qemu", version: 1, ref: { dir, name: "t-vm" } };
  }, 900_000);

  afterAll(async () => {
    if (!dir) return;
    await driver.disk.detach(handle).catch(() => undefined);
    const pid = await runningPid(vmLayout(dir));
    if (pid) {
      process.kill(pid, "SIGKILL");
      for (let i = 0; i < 50 && (await runningPid(vmLayout(dir))); i++) await new Promise((r) => setTimeout(r, 100));
    }
    await rm(dir, { recursive: true, force: true });
    console.log("qemu driver timings (ms):", timings);
  }, 120_000);

  it("refuses handles that are not its own", () => {
    expect(() => driver.validate(handle)).not.toThrow();
    for (const bad of [
      { ...handle, driver: "lab" },
      { ...handle, ref: {} },
      { ...handle, ref: { ...handle.ref, extra: "x" } },
      { ...handle, ref: { ...handle.ref, dir: "relative/dir" } },
      { ...handle, ref: { ...handle.ref, dir: `${dir}/../x` } },
      { ...handle, ref: { ...handle.ref, name: "Bad Name" } },
      { ...handle, ref: { ...handle.ref, sshPort: "22" } },
      { ...handle, ref: { ...handle.ref, dir: `/${"d".repeat(120)}` } },
    ]) {
      expect(() => driver.validate(bad), JSON.stringify(bad.ref)).toThrow(expect.objectContaining({ code: "DRIVER_HANDLE_INVALID" }));
    }
  });

  it("starts the VM, which answers SSH on its loopback port", async () => {
    expect(await driver.power.status(handle)).toBe("stopped");
    await timed("start (qemu -daemonize)", () => driver.power.start(handle));
    expect(await driver.power.status(handle)).toBe("running");
    await driver.power.start(handle); // idempotent
    port = (await sshPortOf(dir))!;
    expect(port).toBeGreaterThan(1023);
    const login = await timed("boot to SSH login", () => waitForSsh(port));
    expect(login.stdout).toMatch(/^alice\n/);
    expect(login.stdout).toContain("root=/dev/vda");
    // The guest is offline apart from the forward: slirp's restrict=on drops its outbound traffic.
    const out = await ssh(port, "timeout 5 bash -c 'exec 3<>/dev/tcp/10.0.2.2/22' && echo reached || echo blocked", 15_000);
    expect(out.stdout.trim()).toBe("blocked");
  }, 150_000);

  it("snapshots the running VM paused, refuses a plain revert, reverts with stopIfRunning", async () => {
    const snap = await timed("snapshot create (running, QMP)", () => driver.snapshots.create(handle, "live"));
    expect(snap).toMatchObject({ name: "live", consistency: "paused", checksum: null });
    expect(snap.sizeBytes).toBe(4 * 1024 ** 3);
    expect(Math.abs(snap.createdAt - Date.now())).toBeLessThan(60_000);
    expect(await driver.power.status(handle)).toBe("running");
    expect((await driver.snapshots.list(handle)).map((s) => s.name)).toEqual(["live"]);
    await rejectsWith(driver.snapshots.create(handle, "live"), "SNAPSHOT_EXISTS");
    await rejectsWith(driver.snapshots.revert(handle, "live", { stopIfRunning: false }), "MACHINE_RUNNING");
    await rejectsWith(driver.disk.attach(handle), "MACHINE_RUNNING");
    expect(await driver.power.status(handle)).toBe("running");

    const reverted = await timed("revert stopIfRunning (stop + revert + start)", () =>
      driver.snapshots.revert(handle, "live", { stopIfRunning: true }),
    );
    expect(reverted.name).toBe("live");
    expect(await driver.power.status(handle)).toBe("running");
    await timed("boot to SSH login (after revert)", () => waitForSsh(port));
  }, 240_000);

  it("stops the VM with an ACPI shutdown", async () => {
    await timed("stop (system_powerdown)", () => driver.power.stop(handle));
    expect(await driver.power.status(handle)).toBe("stopped");
    expect(existsSync(vmLayout(dir).qmp)).toBe(false);
    await driver.power.stop(handle); // idempotent
    // A clean shutdown leaves the guest's ext4 clean; qemu-img check finds the qcow2 sound.
    execFileSync("qemu-img", ["check", vmLayout(dir).disk], { env: { PATH: SYS_PATH } });
  }, 120_000);

  it("snapshots the stopped VM, edits its disk offline, and reverts the edit away", async () => {
    for (const bad of ["", ".x", "a/b", "a b", "x".repeat(64)]) await rejectsWith(driver.snapshots.create(handle, bad), "VALIDATION_FAILED");
    const snap = await timed("snapshot create (stopped, qemu-img)", () => driver.snapshots.create(handle, "before"));
    expect(snap.consistency).toBe("stopped");
    expect((await driver.snapshots.list(handle)).map((s) => [s.name, s.consistency])).toEqual([
      ["live", "paused"],
      ["before", "stopped"],
    ]);

    const { mountPath } = await timed("disk attach", () => driver.disk.attach(handle));
    expect(await driver.disk.attach(handle)).toEqual({ mountPath }); // idempotent
    expect(await readFile(join(mountPath, "etc/shadow"), "utf8")).toMatch(/^alice:\$[^:]+:\d+:/m);
    await writeFile(join(mountPath, "etc/lifeline-marker"), "edited offline\n", { mode: 0o644 });
    await rejectsWith(driver.power.start(handle), "DISK_ATTACHED");
    await rejectsWith(driver.snapshots.revert(handle, "before", { stopIfRunning: true }), "DISK_ATTACHED");
    await rejectsWith(driver.snapshots.create(handle, "while-attached"), "DISK_ATTACHED");
    await rejectsWith(driver.snapshots.delete(handle, "before"), "DISK_ATTACHED");
    expect((await driver.snapshots.list(handle)).map((s) => s.name)).toEqual(["live", "before"]);
    await timed("disk detach", () => driver.disk.detach(handle));
    await driver.disk.detach(handle); // idempotent
    expect(existsSync(mountPath)).toBe(false);

    // The edit reached the qcow2: the booted guest sees it (the offline repair path).
    await driver.power.start(handle);
    await timed("boot to SSH login (after offline edit)", () => waitForSsh(port));
    expect((await ssh(port, "cat /etc/lifeline-marker")).stdout).toBe("edited offline\n");
    await driver.power.stop(handle);

    await timed("snapshot revert (stopped)", () => driver.snapshots.revert(handle, "before", { stopIfRunning: false }));
    const after = await driver.disk.attach(handle);
    expect(existsSync(join(after.mountPath, "etc/lifeline-marker"))).toBe(false);
    expect(existsSync(join(after.mountPath, "etc/shadow"))).toBe(true);
    await driver.disk.detach(handle);
  }, 180_000);

  it("deletes snapshots, and refuses missing ones", async () => {
    await rejectsWith(driver.snapshots.revert(handle, "no-such", { stopIfRunning: true }), "SNAPSHOT_NOT_FOUND");
    await timed("snapshot delete (stopped)", () => driver.snapshots.delete(handle, "before"));
    await driver.snapshots.delete(handle, "live");
    expect(await driver.snapshots.list(handle)).toEqual([]);
    await rejectsWith(driver.snapshots.delete(handle, "before"), "SNAPSHOT_NOT_FOUND");
  }, 60_000);

  it("leaves no mount, loop device or storage daemon behind", async () => {
    const mounts = await readFile("/proc/self/mountinfo", "utf8");
    expect(mounts.split("\n").filter((l) => l.includes(dir))).toEqual([]);
    const loops = execFileSync("losetup", ["--list", "--noheadings", "--output", "NAME,BACK-FILE"], { encoding: "utf8", env: { PATH: SYS_PATH } });
    expect(loops.split("\n").filter((l) => l.includes(dir) || l.includes(vmLayout(dir).disk))).toEqual([]);
    const daemons = execFileSync("ps", ["-eo", "args"], { encoding: "utf8", env: { PATH: SYS_PATH } });
    expect(daemons.split("\n").filter((l) => l.includes("qemu-storage-daemon") && l.includes(dir))).toEqual([]);
    expect(existsSync(vmLayout(dir).attach)).toBe(false);
  });
});
