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
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DriverHandle } from "../../src/drivers/driver.js";
import { QemuDriver } from "../../src/drivers/qemu.js";
import { createVmDir, sshPortOf, vmLayout } from "../../src/drivers/qemu-vm.js";
import { ALICE } from "../../src/lab/image.js";
import { buildVmImage } from "../../src/lab/vm-image.js";
import { LifelineError } from "../../src/protocol/errors.js";
import { sshExec } from "../helpers/lab.js";
import { runLifeline } from "../helpers/processes.js";
import { makeVmRoot, qemuSkipReason, waitForVmSsh } from "../helpers/qemu.js";

const SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const skip = qemuSkipReason();

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

const waitForSsh = (port: number, serialLog: string) => waitForVmSsh(port, serialLog, ALICE);

async function rejectsWith(work: Promise<unknown>, code: string): Promise<void> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(LifelineError);
  expect((err as LifelineError).code, (err as Error).message).toBe(code);
}

describe.skipIf(skip !== undefined)(`qemu driver${skip ? ` (skipped: ${skip})` : ""}`, () => {
  let driver: QemuDriver;
  let vmRoot: Awaited<ReturnType<typeof makeVmRoot>>;
  let dir: string;
  let handle: DriverHandle;
  let port: number;

  /** The snapshot's bytes hashed by coreutils' sha256sum, not by the driver. */
  async function independentSha256(snapshot: string): Promise<string> {
    const raw = join(vmRoot.root, `check-${snapshot}.raw`);
    try {
      execFileSync("qemu-img", ["convert", "-U", "-l", `snapshot.name=${snapshot}`, "-O", "raw", vmLayout(dir).disk, raw], { env: { PATH: SYS_PATH } });
      return `sha256:${execFileSync("sha256sum", [raw], { encoding: "utf8", env: { PATH: SYS_PATH } }).split(" ")[0]}`;
    } finally {
      execFileSync("rm", ["-f", raw], { env: { PATH: SYS_PATH } });
    }
  }

  /** The checksum the driver recorded in the background after create. */
  async function checksumOf(snapshot: string): Promise<string> {
    for (let i = 0; i < 600; i++) {
      const sum = (await driver.snapshots.list(handle)).find((s) => s.name === snapshot)?.checksum;
      if (sum) return sum;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`no checksum recorded for ${snapshot}`);
  }


  beforeAll(async () => {
    const image = await timed("vm image (build or cache)", () => buildVmImage());
    vmRoot = await makeVmRoot();
    driver = new QemuDriver({ vmRoot: vmRoot.root, shutdownTimeoutMs: 60_000 });
    dir = driver.vmDir("t-vm");
    await createVmDir(dir, image);
    handle = { driver: "qemu", version: 1, ref: { name: "t-vm" } };
  }, 900_000);

  afterAll(async () => {
    await vmRoot?.remove();
    console.log("qemu driver timings (ms):", timings);
  }, 120_000);

  it("refuses handles that are not its own, and VMs outside its VM root", () => {
    expect(() => driver.validate(handle)).not.toThrow();
    for (const bad of [
      { ...handle, driver: "lab" },
      { ...handle, version: 2 as 1 },
      { ...handle, ref: {} },
      { ...handle, ref: { ...handle.ref, extra: "x" } },
      // A handle names a VM, never a path: no directory can be smuggled in.
      { ...handle, ref: { ...handle.ref, dir: "/etc" } },
      { ...handle, ref: { name: "../t-vm" } },
      { ...handle, ref: { name: "t-vm/.." } },
      { ...handle, ref: { name: "Bad Name" } },
      { ...handle, ref: { name: "no-such-vm" } },
      { ...handle, ref: { ...handle.ref, sshPort: "22" } },
      { ...handle, ref: { ...handle.ref, sshPort: "70000" } },
    ]) {
      expect(() => driver.validate(bad), JSON.stringify(bad.ref)).toThrow(expect.objectContaining({ code: "DRIVER_HANDLE_INVALID" }));
    }
    // A root so long that no QMP socket path fits: refused per handle, with why.
    expect(() => new QemuDriver({ vmRoot: `/${"d".repeat(100)}` }).validate(handle)).toThrow(/too long/);
    for (const vmRoot of ["relative/vms", "/vms/", "/a/../vms", ""]) {
      expect(() => new QemuDriver({ vmRoot }), vmRoot).toThrow(expect.objectContaining({ code: "CONFIG_INVALID" }));
    }
  });

  it("starts the VM, which answers SSH on its loopback port", async () => {
    expect(await driver.power.status(handle)).toBe("stopped");
    await timed("start (qemu -daemonize)", () => driver.power.start(handle));
    expect(await driver.power.status(handle)).toBe("running");
    await driver.power.start(handle); // idempotent
    port = (await sshPortOf(dir))!;
    expect(port).toBeGreaterThan(1023);
    const login = await timed("boot to SSH login", () => waitForSsh(port, vmLayout(dir).serialLog));
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
    // The revert compared the disk's hash with the snapshot's: sha256sum of the snapshot's bytes agrees.
    expect(reverted.checksum).toBe(await independentSha256("live"));
    expect((await driver.snapshots.list(handle)).find((s) => s.name === "live")!.checksum).toBe(reverted.checksum);
    expect(await driver.power.status(handle)).toBe("running");
    await timed("boot to SSH login (after revert)", () => waitForSsh(port, vmLayout(dir).serialLog));
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
    await timed("boot to SSH login (after offline edit)", () => waitForSsh(port, vmLayout(dir).serialLog));
    expect((await ssh(port, "cat /etc/lifeline-marker")).stdout).toBe("edited offline\n");
    await driver.power.stop(handle);

    // A disk that does not hash to the snapshot's checksum after the revert is refused, and the VM stays stopped.
    const right = await checksumOf("before");
    const meta = JSON.parse(await readFile(vmLayout(dir).snapshotMeta, "utf8")) as Record<string, { checksum: string }>;
    meta["before"]!.checksum = `sha256:${"0".repeat(64)}`;
    await writeFile(vmLayout(dir).snapshotMeta, JSON.stringify(meta));
    await rejectsWith(driver.snapshots.revert(handle, "before", { stopIfRunning: true }), "SNAPSHOT_CHECKSUM_MISMATCH");
    expect(await driver.power.status(handle)).toBe("stopped");
    meta["before"]!.checksum = right;
    await writeFile(vmLayout(dir).snapshotMeta, JSON.stringify(meta));
    // What a server killed mid-hash leaves (its pid is gone) is swept; a live process's file is not.
    const deadPid = 4_194_000;
    expect(existsSync(`/proc/${deadPid}`)).toBe(false);
    await writeFile(join(dir, `.hash-${deadPid}-abcdef.raw`), "stale");
    await writeFile(join(dir, `.hash-${process.pid}-abcdef.raw`), "in flight");
    const back = await timed("snapshot revert (stopped, with hash check)", () => driver.snapshots.revert(handle, "before", { stopIfRunning: false }));
    expect(back.checksum).toBe(right);
    expect(existsSync(join(dir, `.hash-${deadPid}-abcdef.raw`))).toBe(false);
    expect(existsSync(join(dir, `.hash-${process.pid}-abcdef.raw`))).toBe(true);
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

  it("lab vm create / delete make and remove a VM in a VM root, refusing bad names and duplicates", async () => {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, LIFELINE_VM_ROOT: vmRoot.root };
    const created = await runLifeline(["lab", "vm", "create", "cli-vm"], env);
    expect(created.stderr).toBe("");
    expect(created.stdout).toContain(join(vmRoot.root, "cli-vm"));
    expect(() => driver.validate({ driver: "qemu", version: 1, ref: { name: "cli-vm" } })).not.toThrow();
    // An overlay on the cached image: the VM costs only what it writes.
    const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", "-U", vmLayout(driver.vmDir("cli-vm")).disk], { encoding: "utf8", env: { PATH: SYS_PATH } })) as { "backing-filename"?: string };
    expect(info["backing-filename"]).toMatch(/-vm\/disk\.qcow2$/);
    expect((await runLifeline(["lab", "vm", "create", "cli-vm"], env)).stderr).toMatch(/already exists/);
    for (const bad of ["Bad", "../x", "a b", "x".repeat(64)]) expect((await runLifeline(["lab", "vm", "create", bad], env)).stderr, bad).toMatch(/USAGE|Invalid VM name/);
    expect((await runLifeline(["lab", "vm", "create", "x", "--vm-root", "relative"], env)).stderr).toMatch(/CONFIG_INVALID/);
    expect((await runLifeline(["lab", "vm", "delete", "cli-vm"], env)).stdout).toBe("cli-vm deleted\n");
    expect(existsSync(driver.vmDir("cli-vm"))).toBe(false);
    expect((await runLifeline(["lab", "vm", "delete", "cli-vm"], env)).stderr).toMatch(/no VM "cli-vm"/);
  }, 120_000);
});
