/**
 * The one suite every driver passes (after Hono's adapter suite): snapshots (crash-consistent,
 * byte-exact revert), power, the optional disk capability, and clean teardown. A driver runs
 * it by giving driverSuite() a factory for one machine it can break and throw away. Today: the
 * `lab` driver on a real lab host (needs root; skipped, saying why, without it).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, open, readFile, rmdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Driver, DriverHandle, SnapshotInfo } from "../../src/drivers/driver.js";
import { LabDriver, serverDrivers } from "../../src/drivers/index.js";
import { buildImage } from "../../src/lab/index.js";
import { LifelineError } from "../../src/protocol/errors.js";
import { startLab } from "../helpers/lab.js";

const isRoot = process.geteuid?.() === 0;
const SYS = { encoding: "utf8" as const, env: { PATH: "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin" } };

/** One throw-away machine of a driver, and what the suite needs to look at it from outside. */
export interface DriverMachine {
  driver: Driver;
  handle: DriverHandle;
  /** Runs argv as root inside the running machine. */
  exec(argv: readonly string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** sha256 ("sha256:<hex>") of the machine's disk content, read from outside (machine stopped). */
  diskChecksum(): Promise<string>;
  /** `fsck.ext4 -n` (or the driver's equivalent) of the root filesystem on the stopped machine's disk. */
  fsckDisk(): Promise<{ exitCode: number; output: string }>;
  /** Destroys the machine (for the lab: `lab down`). */
  destroy(): Promise<void>;
  /**
   * Optional: leaves what a crash in the middle of create() would (a half-made snapshot
   * marked "creating"), to check that it is never listed and is cleaned up.
   */
  leaveHalfMadeSnapshot?(name: string): Promise<void>;
  /** What destroy() left behind (snapshot files, mounts, loop devices...): must be empty. */
  leftovers(): Promise<string[]>;
}

async function sha256File(path: string): Promise<string> {
  const fh = await open(path, "r");
  try {
    const hash = createHash("sha256");
    const buf = Buffer.allocUnsafe(8 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
    return `sha256:${hash.digest("hex")}`;
  } finally {
    await fh.close();
  }
}

async function rejectsWith(work: Promise<unknown>, code: string): Promise<void> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(LifelineError);
  expect((err as LifelineError).code).toBe(code);
}

export function driverSuite(name: string, makeMachine: () => Promise<DriverMachine>, opts: { skip?: string } = {}): void {
  describe.skipIf(opts.skip !== undefined)(`driver "${name}"${opts.skip ? ` (skipped: ${opts.skip})` : ""}`, () => {
    let m: DriverMachine;
    let driver: Driver;
    let handle: DriverHandle;
    let originalShadow: string;
    const shadow = async () => {
      const r = await m.exec(["cat", "/etc/shadow"]);
      expect(r.exitCode).toBe(0);
      return r.stdout;
    };
    const find = async (snap: string) => (await driver.snapshots.list(handle)).find((s) => s.name === snap);
    /** The snapshot's checksum once the background hash has recorded it. */
    const checksumOf = async (snap: string): Promise<string> => {
      for (let i = 0; i < 600; i++) {
        const sum = (await find(snap))?.checksum;
        if (sum) return sum;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no checksum recorded for ${snap}`);
    };

    beforeAll(async () => {
      m = await makeMachine();
      driver = m.driver;
      handle = m.handle;
    }, 600_000);

    afterAll(async () => {
      await m?.destroy();
    }, 120_000);

    it("is registered, and refuses handles that are not its own", () => {
      const registry = serverDrivers({ vmRoot: "/nonexistent/vms" });
      expect(registry.named(name)?.name).toBe(name);
      expect(registry.for(handle).name).toBe(name);
      expect(() => driver.validate({ ...handle, driver: "nope" })).toThrow(expect.objectContaining({ code: "DRIVER_HANDLE_INVALID" }));
      expect(() => driver.validate({ ...handle, ref: {} })).toThrow(expect.objectContaining({ code: "DRIVER_HANDLE_INVALID" }));
      expect(() => driver.validate({ ...handle, ref: { ...handle.ref, extra: "x" } })).toThrow(expect.objectContaining({ code: "DRIVER_HANDLE_INVALID" }));
      if (name === "lab") {
        // A lab outside the driver's lab root is not driven, even by an admin's handle.
        expect(() => driver.validate({ ...handle, ref: { ...handle.ref, labDir: "/tmp/elsewhere" } })).toThrow(/not driven|lab root/);
        expect(() => new LabDriver({ labRoot: "relative/labs" })).toThrow(expect.objectContaining({ code: "CONFIG_INVALID" }));
      }
      expect(() => registry.for({ ...handle, driver: "nope" })).toThrow(expect.objectContaining({ code: "DRIVER_HANDLE_INVALID" }));
    });

    it("snapshots a running machine consistently, and reverts it byte-for-byte (stopIfRunning)", async () => {
      expect(await driver.power.status(handle)).toBe("running");
      originalShadow = await shadow();
      const snap = await driver.snapshots.create(handle, "before-fix");
      expect(snap).toMatchObject({ name: "before-fix", consistency: expect.stringMatching(/^(frozen|paused)$/) });
      expect(snap.sizeBytes).toBeGreaterThan(0);
      expect(Math.abs(snap.createdAt - Date.now())).toBeLessThan(60_000);
      expect(await driver.power.status(handle)).toBe("running");

      expect((await m.exec(["chage", "-d", "0", "alice"])).exitCode).toBe(0);
      const changed = await shadow();
      expect(changed).not.toBe(originalShadow);
      expect(changed).toMatch(/^alice:[^:]*:0:/m);

      await rejectsWith(driver.snapshots.revert(handle, "before-fix", { stopIfRunning: false }), "MACHINE_RUNNING");
      expect(await shadow()).toBe(changed); // refused means untouched

      const expected = await checksumOf("before-fix");
      expect(expected).toMatch(/^sha256:[0-9a-f]{64}$/);
      const reverted = await driver.snapshots.revert(handle, "before-fix", { stopIfRunning: true });
      expect(reverted.name).toBe("before-fix");
      expect(reverted.checksum).toBe(expected);
      expect(await driver.power.status(handle)).toBe("running");
      expect(await shadow()).toBe(originalShadow);
    }, 120_000);

    it("reverts a stopped machine to a disk that hashes, from outside, to the snapshot's checksum", async () => {
      await driver.power.stop(handle);
      expect(await driver.power.status(handle)).toBe("stopped");
      const reverted = await driver.snapshots.revert(handle, "before-fix", { stopIfRunning: false });
      expect(await m.diskChecksum()).toBe(reverted.checksum);
      expect(reverted.checksum).toBe(await checksumOf("before-fix"));
      const snap = await driver.snapshots.create(handle, "stopped-one");
      expect(snap.consistency).toBe("stopped");
      expect(await checksumOf("stopped-one")).toBe(reverted.checksum);
      await driver.power.start(handle);
      expect(await driver.power.status(handle)).toBe("running");
      expect(await shadow()).toBe(originalShadow);
    }, 120_000);

    it("validates names and refuses existing, missing and running cases with their codes", async () => {
      for (const bad of ["", ".hidden", "-x", "a/b", "../etc", "a b", "x".repeat(64), "é"]) {
        await rejectsWith(driver.snapshots.create(handle, bad), "VALIDATION_FAILED");
      }
      await rejectsWith(driver.snapshots.create(handle, "before-fix"), "SNAPSHOT_EXISTS");
      await rejectsWith(driver.snapshots.revert(handle, "no-such", { stopIfRunning: true }), "SNAPSHOT_NOT_FOUND");
      await rejectsWith(driver.snapshots.delete(handle, "no-such"), "SNAPSHOT_NOT_FOUND");
      await rejectsWith(driver.snapshots.revert(handle, "../x", { stopIfRunning: true }), "VALIDATION_FAILED");
      expect(await driver.power.status(handle)).toBe("running");
    }, 60_000);

    it("lists and deletes snapshots", async () => {
      await driver.snapshots.create(handle, "extra.1");
      const names = (await driver.snapshots.list(handle)).map((s: SnapshotInfo) => s.name);
      expect(names).toEqual(["before-fix", "stopped-one", "extra.1"]);
      await driver.snapshots.delete(handle, "extra.1");
      await driver.snapshots.delete(handle, "stopped-one");
      expect((await driver.snapshots.list(handle)).map((s) => s.name)).toEqual(["before-fix"]);
      await rejectsWith(driver.snapshots.delete(handle, "extra.1"), "SNAPSHOT_NOT_FOUND");
      // A deleted name can be used again.
      await driver.snapshots.create(handle, "extra.1");
      await driver.snapshots.delete(handle, "extra.1");
    }, 60_000);

    it("never lists a snapshot half-made by a crash, and cleans it up", async (ctx) => {
      if (!m.leaveHalfMadeSnapshot) return ctx.skip();
      await m.leaveHalfMadeSnapshot("crashed");
      expect((await driver.snapshots.list(handle)).map((s) => s.name)).toEqual(["before-fix"]);
      await rejectsWith(driver.snapshots.delete(handle, "crashed"), "SNAPSHOT_NOT_FOUND");
      const again = await driver.snapshots.create(handle, "crashed");
      expect(again.name).toBe("crashed");
      await driver.snapshots.delete(handle, "crashed");
    }, 60_000);

    it("snapshots a machine that writes constantly; the reverted disk passes fsck", async () => {
      const writer = "while :; do dd if=/dev/urandom of=/root/f bs=64k count=16 conv=fsync 2>/dev/null; done";
      const started = await m.exec(["sh", "-c", `nohup sh -c '${writer}' >/dev/null 2>&1 &`]);
      expect(started.exitCode).toBe(0);
      await new Promise((r) => setTimeout(r, 1_000));
      const snap = await driver.snapshots.create(handle, "busy");
      expect(snap.consistency).toMatch(/^(frozen|paused)$/);
      // The machine was thawed (or continued): the writer still makes progress afterwards.
      const size1 = (await m.exec(["stat", "-c", "%Y.%s", "/root/f"])).stdout;
      await new Promise((r) => setTimeout(r, 1_500));
      const size2 = (await m.exec(["stat", "-c", "%Y.%s", "/root/f"])).stdout;
      expect((await m.exec(["pgrep", "-f", "dev/urandom"])).exitCode).toBe(0);
      expect(size1 === size2 && size1 !== "" ? "stuck" : "progressing").toBe("progressing");

      await driver.power.stop(handle);
      await driver.snapshots.revert(handle, "busy", { stopIfRunning: false });
      const fsck = await m.fsckDisk();
      expect(fsck.output).toMatch(/clean/);
      expect(fsck.exitCode, fsck.output).toBe(0);
      await driver.power.start(handle);
      expect(await driver.power.status(handle)).toBe("running");
      await driver.snapshots.delete(handle, "busy");
    }, 120_000);

    it("attaches the disk of a stopped machine only, and refuses to start it until detached", async (ctx) => {
      if (!driver.disk) return ctx.skip();
      await rejectsWith(driver.disk.attach(handle), "MACHINE_RUNNING");
      await driver.power.stop(handle);
      const { mountPath } = await driver.disk.attach(handle);
      expect(await driver.disk.attach(handle)).toEqual({ mountPath }); // idempotent
      const onDisk = await readFile(`${mountPath}/etc/shadow`, "utf8");
      expect(onDisk).toBe(originalShadow);
      await rejectsWith(driver.power.start(handle), "DISK_ATTACHED");
      await rejectsWith(driver.snapshots.revert(handle, "before-fix", { stopIfRunning: true }), "DISK_ATTACHED");
      // A snapshot of an attached disk freezes the rescue mount.
      const snap = await driver.snapshots.create(handle, "attached");
      expect(snap.consistency).toBe("frozen");
      await driver.snapshots.delete(handle, "attached");
      await driver.disk.detach(handle);
      await driver.disk.detach(handle); // idempotent
      await driver.power.start(handle);
      expect(await driver.power.status(handle)).toBe("running");
      expect(await shadow()).toBe(originalShadow);
    }, 120_000);

    it("destroying the machine leaves no snapshot, mount or loop device behind", async () => {
      await driver.snapshots.create(handle, "left-for-teardown");
      if (driver.disk) {
        await driver.power.stop(handle);
        await driver.disk.attach(handle);
      }
      await m.destroy();
      expect(await m.leftovers()).toEqual([]);
    }, 120_000);
  });
}

// --- the lab driver ------------------------------------------------------------------------

async function labMachine(): Promise<DriverMachine> {
  await buildImage();
  const lab = await startLab({ hosts: 1 });
  const host = lab.hosts[0]!;
  const driver = new LabDriver();
  return {
    driver,
    handle: { driver: "lab", version: 1, ref: { lab: lab.name, host: host.name, labDir: lab.labDir } },
    exec: (argv) => lab.exec(host.name, argv),
    diskChecksum: () => sha256File(host.diskPath),
    async fsckDisk() {
      // Plain -n says whether the filesystem is marked clean (no journal to replay); -n -f checks it all.
      let output = "";
      let exitCode = 0;
      for (const args of [["-n"], ["-n", "-f"]]) {
        try {
          output += execFileSync("fsck.ext4", [...args, host.diskPath], { ...SYS, stdio: ["ignore", "pipe", "pipe"] });
        } catch (err) {
          const e = err as { status?: number; stdout?: string; stderr?: string };
          output += `${e.stdout ?? ""}${e.stderr ?? ""}`;
          exitCode = Math.max(exitCode, e.status ?? 8);
        }
      }
      return { exitCode, output };
    },
    async leaveHalfMadeSnapshot(name) {
      // As createSnapshot leaves it when killed between its "creating" record and the end of the copy.
      const dir = join(dirname(host.diskPath), "snapshots");
      await writeFile(join(dir, `${name}.json`), JSON.stringify({ version: 1, id: "crashed", name, state: "creating", createdAt: Date.now() }));
      execFileSync("cp", ["--reflink=always", host.diskPath, join(dir, `${name}.img`)], SYS);
      await writeFile(join(dir, `other.img.tmp-999`), "partial");
    },
    // `lab down` without purge: store.img (the base image cache) stays, so we can look inside it.
    destroy: () => lab.lab.down(),
    async leftovers() {
      const found: string[] = [];
      const mounts = await readFile("/proc/self/mountinfo", "utf8");
      for (const line of mounts.split("\n")) if (line.includes(lab.labDir)) found.push(`mount: ${line}`);
      const loops = execFileSync("losetup", ["--list", "--noheadings", "--output", "NAME,BACK-FILE"], SYS);
      for (const line of loops.split("\n")) if (line.includes(lab.labDir)) found.push(`loop: ${line}`);
      const files = execFileSync("find", [lab.labDir, "-type", "f", "!", "-name", "store.img", "!", "-name", "test-owner"], SYS);
      for (const line of files.split("\n").filter(Boolean)) found.push(`file: ${line}`);
      // Inside the store image: only the base image may remain (no host disk, no snapshot).
      const look = await mkdtemp(join(tmpdir(), "lifeline-store-"));
      try {
        execFileSync("mount", ["-o", "ro,loop", join(lab.labDir, "store.img"), look], SYS);
        try {
          const inStore = execFileSync("find", [look, "-type", "f", "!", "-path", `${look}/base/*`], SYS);
          for (const line of inStore.split("\n").filter(Boolean)) found.push(`in store: ${line.slice(look.length)}`);
        } finally {
          execFileSync("umount", [look], SYS);
        }
      } finally {
        await rmdir(look);
      }
      return found;
    },
  };
}

driverSuite("lab", labMachine, isRoot ? {} : { skip: "needs root: namespaces, mounts, loop devices" });
