/**
 * The `qemu` driver: a VM run by qemu-system-x86_64 (TCG), everything about it in one
 * directory. Handle ref: `{ name: <vm name>, sshPort?: <port> }`; the VM's directory is
 * `<vmRoot>/<name>`, vmRoot being the server's setting (LIFELINE_VM_ROOT), so a handle cannot
 * point QEMU (run as root) at files elsewhere. The directory holds disk.qcow2, optionally
 * vmlinuz and initrd.img for a direct kernel boot (createVmDir() makes such a VM from the lab's
 * VM image; without them the disk boots through the firmware), and the runtime files (pid
 * file, QMP socket, serial log). See docs/qemu.md.
 *
 * Snapshots are qcow2 internal snapshots of disk.qcow2: `qemu-img snapshot` while stopped,
 * and while running QMP `blockdev-snapshot-internal-sync` with the VM paused around it
 * (consistency "paused"). Revert is refused while running (MACHINE_RUNNING) unless
 * stopIfRunning. A snapshot's checksum is the sha256 of the virtual disk's bytes in it, hashed
 * in the background after create (O(disk size): `qemu-img convert -l` to a sparse temp file);
 * revert hashes the disk after `qemu-img snapshot -a` and refuses a mismatch, as the lab does.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isAbsoluteNormalised } from "../data-dir.js";
import { z } from "zod";
import { isLabError } from "../lab/errors.js";
import { run } from "../lab/exec.js";
import { withLock } from "../lab/lock.js";
import { hashFile } from "../lab/snapshots.js";
import { LifelineError } from "../protocol/errors.js";
import { SnapshotNameSchema } from "../protocol/machines.js";
import { attachDisk, attachedMountPath, detachDisk, isAttached } from "./qemu-disk.js";
import type { Driver, DriverHandle, LoginEndpoint, PowerState, SnapshotInfo } from "./driver.js";
import { qmpExecute, QmpClient } from "./qemu-qmp.js";
import { freeLoopbackPort, MAX_SOCKET_PATH, removeRuntimeFiles, runningPid, sshPortOf, vmLayout, type VmLayout } from "./qemu-vm.js";

const DEFAULT_APPEND = "root=/dev/vda rw console=ttyS0 net.ifnames=0";
/** The disk's block backend name: QMP snapshot commands name it. */
const DRIVE_ID = "disk0";

export const VmName = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, "name is 1-63 lowercase letters, digits and -");

const QemuRef = z
  .object({
    name: VmName,
    sshPort: z
      .string()
      .regex(/^[1-9][0-9]{0,4}$/)
      .refine((p) => Number(p) >= 1024 && Number(p) <= 65535, "sshPort is 1024-65535")
      .optional(),
  })
  .strict();
type QemuRef = z.infer<typeof QemuRef>;

export interface QemuDriverOptions {
  /** The directory that holds one directory per VM (absolute). */
  vmRoot: string;
  /** Guest memory in MiB (default 1024) and virtual CPUs (default 2). */
  memoryMiB?: number;
  cpus?: number;
  /** How long power.stop waits for the guest's own ACPI shutdown before `quit` (default 60 s). */
  shutdownTimeoutMs?: number;
  /** qemu-system-x86_64 by default. */
  qemuBinary?: string;
}

interface QemuImgInfo {
  "virtual-size": number;
  snapshots?: Array<{ name: string; "date-sec": number; "date-nsec": number }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const POWER_BUTTON_REPEAT_MS = 5_000;

export class QemuDriver implements Driver {
  readonly name = "qemu";
  constructor(private readonly opts: QemuDriverOptions) {
    if (!isAbsoluteNormalised(opts.vmRoot)) {
      throw new LifelineError("CONFIG_INVALID", `The VM root must be an absolute, normalised path (got "${opts.vmRoot}")`);
    }
  }

  /** The directory of a VM by name, inside the VM root. */
  vmDir(name: string): string {
    return join(this.opts.vmRoot, name);
  }

  validate(handle: DriverHandle): void {
    this.ref(handle);
  }

  /** The loopback port forwarded to the guest's port 22 while it runs (its NAT address is not reachable). */
  loginEndpoint(handle: DriverHandle): Promise<LoginEndpoint | undefined> {
    return this.act(
      handle,
      async (vm) => {
        const port = (await runningPid(vm)) ? await sshPortOf(vm.dir) : undefined;
        return port ? { host: "127.0.0.1", port } : undefined;
      },
      { lock: false },
    );
  }

  readonly power = {
    status: (handle: DriverHandle) =>
      this.act(handle, async (vm): Promise<PowerState> => ((await runningPid(vm)) ? "running" : "stopped"), { lock: false }),
    start: (handle: DriverHandle) => this.act(handle, (vm, ref) => this.start(vm, ref)),
    stop: (handle: DriverHandle) => this.act(handle, (vm) => this.stop(vm)),
  };

  readonly snapshots = {
    create: (handle: DriverHandle, name: string) => this.act(handle, (vm, ref) => this.createSnapshot(vm, ref, checkName(name))),
    list: (handle: DriverHandle) => this.act(handle, (vm) => this.listSnapshots(vm), { lock: false }),
    revert: (handle: DriverHandle, name: string, opts: { stopIfRunning: boolean }) =>
      this.act(handle, (vm, ref) => this.revert(vm, ref, checkName(name), opts.stopIfRunning)),
    delete: (handle: DriverHandle, name: string) => this.act(handle, (vm, ref) => this.deleteSnapshot(vm, ref, checkName(name))),
  };

  readonly disk = {
    attach: (handle: DriverHandle) =>
      this.act(handle, async (vm, ref) => {
        const existing = await attachedMountPath(vm);
        if (existing) return { mountPath: existing };
        if (await runningPid(vm)) throw running(ref, "attach its disk");
        return { mountPath: await attachDisk(vm) };
      }),
    detach: (handle: DriverHandle) => this.act(handle, (vm) => detachDisk(vm)),
  };

  private async start(vm: VmLayout, ref: QemuRef): Promise<void> {
    if (await runningPid(vm)) return;
    if (await isAttached(vm)) throw attached(ref, "start it");
    await removeRuntimeFiles(vm);
    // The last run's port when it is still free: clients that remember it keep working.
    const port = ref.sshPort ? Number(ref.sshPort) : await freeLoopbackPort(await sshPortOf(vm.dir));
    await writeFile(vm.sshPort, `${port}\n`);
    // A kernel in the VM dir is booted directly (the lab VM image); without one, the disk's own boot loader.
    const direct = existsSync(vm.kernel);
    const append = (await readFile(vm.append, "utf8").catch(() => DEFAULT_APPEND)).trim() || DEFAULT_APPEND;
    // qemu's option syntax doubles a comma inside a value.
    const q = (value: string) => value.replaceAll(",", ",,");
    const args = [
      "-name", ref.name,
      "-accel", "tcg",
      "-m", String(this.opts.memoryMiB ?? 1024),
      "-smp", String(this.opts.cpus ?? 2),
      "-nodefaults",
      "-no-user-config",
      "-drive", `file=${q(vm.disk)},if=none,id=${DRIVE_ID},format=qcow2`,
      ...(direct
        ? ["-kernel", vm.kernel, ...(existsSync(vm.initrd) ? ["-initrd", vm.initrd] : []), "-append", append, "-device", `virtio-blk-pci,drive=${DRIVE_ID}`]
        : // The firmware boots the disk itself, on the IDE bus every guest (Windows too) has a driver for.
          ["-device", `ide-hd,drive=${DRIVE_ID},bus=ide.0,bootindex=0`]),
      // restrict=on: the guest reaches nothing outside QEMU; only the loopback forward comes in.
      "-netdev", `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${port}-:22`,
      "-device", "virtio-net-pci,netdev=n0",
      "-qmp", `unix:${q(vm.qmp)},server=on,wait=off`,
      "-serial", `file:${q(vm.serialLog)}`,
      "-display", "none",
      "-pidfile", vm.pid,
      // The parent returns once the VM is set up (or says why not); the VM outlives us.
      "-daemonize",
    ];
    await run(this.opts.qemuBinary ?? "qemu-system-x86_64", args, { timeoutMs: 60_000 });
    if (!(await runningPid(vm))) throw new LifelineError("DRIVER_FAILED", `VM "${ref.name}" exited right after it started (see ${vm.serialLog})`);
  }

  private async stop(vm: VmLayout): Promise<void> {
    const pid = await runningPid(vm);
    if (!pid) {
      await removeRuntimeFiles(vm);
      return;
    }
    const gone = async (ms: number) => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        if (!(await runningPid(vm))) return true;
        await sleep(200);
      }
      return !(await runningPid(vm));
    };
    // The guest's own shutdown (ACPI power button) first: its filesystem is then clean. A press
    // that comes before the guest listens for it (systemd-logind not up yet, on a slow TCG boot)
    // is lost, so the button is pressed again every few seconds until the guest goes.
    const press = () =>
      qmpExecute(vm.qmp, "system_powerdown").then(
        () => true,
        () => false,
      );
    const deadline = Date.now() + (this.opts.shutdownTimeoutMs ?? 60_000);
    let asked = await press();
    let down = false;
    while (asked && !down && Date.now() < deadline) {
      down = await gone(Math.min(POWER_BUTTON_REPEAT_MS, deadline - Date.now()));
      if (!down) asked = await press();
    }
    if (!down) {
      await qmpExecute(vm.qmp, "quit").catch(() => undefined);
      if (!(await gone(10_000))) {
        process.kill(pid, "SIGKILL");
        await gone(10_000);
      }
    }
    await removeRuntimeFiles(vm);
  }

  /** The snapshot's checksum: recorded, being hashed in this process (waited for), or hashed now. */
  private async snapshotChecksum(vm: VmLayout, snap: SnapshotInfo): Promise<string> {
    if (snap.checksum) return snap.checksum;
    const pending = pendingHashes.get(hashKey(vm, snap));
    const sum = pending ? await pending.catch(() => contentSha256(vm, snap.name)) : await contentSha256(vm, snap.name);
    await recordChecksum(vm, snap, sum);
    return sum;
  }

  private async listSnapshots(vm: VmLayout): Promise<SnapshotInfo[]> {
    // -U (force share): reads the snapshot table of an image a running QEMU or the rescue
    // export holds. The table changes only through this driver, under its lock.
    const r = await run("qemu-img", ["info", "--output=json", "-U", vm.disk]);
    const info = JSON.parse(r.stdout) as QemuImgInfo;
    const meta = await readSnapshotMeta(vm);
    return (info.snapshots ?? []).map((s) => {
      const createdAt = s["date-sec"] * 1000 + Math.floor(s["date-nsec"] / 1e6);
      // qcow2 keeps no record of how a snapshot was taken nor of its hash; ours is beside the
      // disk, for the snapshot of that name and time. One made by hand (qemu-img while stopped)
      // has none: it was taken stopped, and its checksum is computed when a revert needs it.
      const known = meta[s.name];
      const mine = known && (known.createdAt === undefined || known.createdAt === createdAt) ? known : undefined;
      return { name: s.name, createdAt, sizeBytes: info["virtual-size"], checksum: mine?.checksum ?? null, consistency: mine?.consistency ?? "stopped" };
    });
  }

  private async find(vm: VmLayout, name: string): Promise<SnapshotInfo | undefined> {
    return (await this.listSnapshots(vm)).find((s) => s.name === name);
  }

  private async createSnapshot(vm: VmLayout, ref: QemuRef, name: string): Promise<SnapshotInfo> {
    if (await isAttached(vm)) throw attached(ref, "snapshot it (the rescue export holds the image)");
    if (await this.find(vm, name)) throw new LifelineError("SNAPSHOT_EXISTS", `Snapshot "${name}" already exists`);
    let consistency: SnapshotInfo["consistency"] = "stopped";
    if (await runningPid(vm)) {
      // Paused around the snapshot: every write the guest issued is in, none is half-done.
      const qmp = await QmpClient.connect(vm.qmp);
      try {
        await qmp.execute("stop");
        try {
          await qmp.execute("blockdev-snapshot-internal-sync", { device: DRIVE_ID, name });
        } finally {
          await qmp.execute("cont");
        }
      } finally {
        qmp.close();
      }
      consistency = "paused";
    } else {
      await run("qemu-img", ["snapshot", "-c", name, vm.disk], { timeoutMs: 300_000 });
    }
    const listed = (await this.listSnapshots(vm)).find((s) => s.name === name);
    if (!listed) throw new LifelineError("DRIVER_FAILED", `Snapshot "${name}" was not recorded in ${vm.disk}`);
    await writeSnapshotMeta(vm, { ...(await readSnapshotMeta(vm)), [name]: { consistency, createdAt: listed.createdAt, checksum: null } });
    const made = { ...listed, consistency, checksum: null };
    hashInBackground(vm, made);
    return made;
  }

  private async revert(vm: VmLayout, ref: QemuRef, name: string, stopIfRunning: boolean): Promise<SnapshotInfo> {
    if (await isAttached(vm)) throw attached(ref, "revert it");
    const snap = await this.find(vm, name);
    if (!snap) throw new LifelineError("SNAPSHOT_NOT_FOUND", `No snapshot "${name}" of VM "${ref.name}"`);
    const wasRunning = (await runningPid(vm)) !== undefined;
    if (wasRunning && !stopIfRunning) throw running(ref, `revert it to "${name}"`);
    if (wasRunning) await this.stop(vm);
    const expected = await this.snapshotChecksum(vm, snap);
    await run("qemu-img", ["snapshot", "-a", name, vm.disk], { timeoutMs: 300_000 });
    const actual = await contentSha256(vm, null);
    if (actual !== expected) {
      throw new LifelineError(
        "SNAPSHOT_CHECKSUM_MISMATCH",
        `The disk of VM "${ref.name}" reverted to "${name}" hashes to ${actual}, the snapshot to ${expected}: not byte-exact; the VM stays stopped`,
      );
    }
    if (wasRunning) await this.start(vm, ref);
    return { ...snap, checksum: expected };
  }

  private async deleteSnapshot(vm: VmLayout, ref: QemuRef, name: string): Promise<void> {
    if (await isAttached(vm)) throw attached(ref, "delete its snapshots");
    if (!(await this.find(vm, name))) throw new LifelineError("SNAPSHOT_NOT_FOUND", `No snapshot "${name}" of VM "${ref.name}"`);
    if (await runningPid(vm)) {
      await qmpExecute(vm.qmp, "blockdev-snapshot-delete-internal-sync", { device: DRIVE_ID, name });
    } else {
      await run("qemu-img", ["snapshot", "-d", name, vm.disk], { timeoutMs: 300_000 });
    }
    const { [name]: _gone, ...rest } = await readSnapshotMeta(vm);
    await writeSnapshotMeta(vm, rest);
  }

  private ref(handle: DriverHandle): QemuRef {
    const invalid = (why: string) => new LifelineError("DRIVER_HANDLE_INVALID", `Not a qemu driver handle: ${why}`);
    if (handle.driver !== this.name) throw invalid(`driver is "${handle.driver}"`);
    if (handle.version !== 1) throw invalid(`version ${String(handle.version)} is not supported`);
    const parsed = QemuRef.safeParse(handle.ref);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw invalid(`ref ${issue?.path.join(".") || ""}: ${issue?.message ?? "invalid"} (expected { name, sshPort? })`);
    }
    if (vmLayout(this.vmDir(parsed.data.name)).qmp.length > MAX_SOCKET_PATH) {
      throw invalid(`the VM root ${this.opts.vmRoot} is too long for VM "${parsed.data.name}"'s QMP socket path (${MAX_SOCKET_PATH} bytes at most)`);
    }
    if (!existsSync(vmLayout(this.vmDir(parsed.data.name)).disk)) {
      throw invalid(`no VM "${parsed.data.name}" in ${this.opts.vmRoot} (no ${parsed.data.name}/disk.qcow2; see docs/qemu.md)`);
    }
    return parsed.data;
  }

  /**
   * Runs work on the handle's VM, one mutating operation per VM at a time (the lock is a
   * file in the VM dir, so two server processes queue too). Lab-level failures (a system
   * command) leave as DRIVER_FAILED, with the cause kept.
   */
  private async act<T>(handle: DriverHandle, work: (vm: VmLayout, ref: QemuRef) => Promise<T>, opts: { lock: boolean } = { lock: true }): Promise<T> {
    const ref = this.ref(handle);
    const vm = vmLayout(this.vmDir(ref.name));
    try {
      return opts.lock ? await withLock(vm.lock, () => work(vm, ref), 600_000) : await work(vm, ref);
    } catch (err) {
      if (err instanceof LifelineError) throw err;
      if (isLabError(err)) throw new LifelineError("DRIVER_FAILED", `${err.message} (${err.code})`, { cause: err });
      throw new LifelineError("DRIVER_FAILED", `VM "${ref.name}": ${(err as Error).message}`, { cause: err });
    }
  }
}

/** What qcow2 does not record about a snapshot. Older files held just the consistency string. */
interface SnapshotNote {
  consistency: SnapshotInfo["consistency"];
  /** Which snapshot of that name this note is about (a name can be deleted and taken again). */
  createdAt?: number;
  checksum?: string | null;
}
type SnapshotMeta = Record<string, SnapshotNote>;

async function readSnapshotMeta(vm: VmLayout): Promise<SnapshotMeta> {
  try {
    const parsed = JSON.parse(await readFile(vm.snapshotMeta, "utf8")) as Record<string, unknown>;
    if (!parsed || typeof parsed !== "object") return {};
    const meta: SnapshotMeta = {};
    for (const [name, value] of Object.entries(parsed)) {
      if (value === "paused" || value === "stopped") meta[name] = { consistency: value };
      else if (value && typeof value === "object") meta[name] = value as SnapshotNote;
    }
    return meta;
  } catch {
    return {};
  }
}

async function writeSnapshotMeta(vm: VmLayout, meta: SnapshotMeta): Promise<void> {
  const tmp = `${vm.snapshotMeta}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  await writeFile(tmp, `${JSON.stringify(meta, null, 2)}\n`);
  await rename(tmp, vm.snapshotMeta);
}

/**
 * sha256 ("sha256:<hex>") of the virtual disk's bytes: in a snapshot, or as the disk is now.
 * qemu-img writes them to a sparse raw file beside the disk (a pipe cannot take its seeks),
 * which is hashed and removed. -U: a running VM holds the image lock; a snapshot's clusters
 * never change while it exists.
 */
async function contentSha256(vm: VmLayout, snapshot: string | null): Promise<string> {
  await removeStaleHashFiles(vm);
  // The pid in the name: a file left by a process that died mid-hash is known as stale.
  const tmp = join(vm.dir, `.hash-${process.pid}-${randomBytes(6).toString("hex")}.raw`);
  try {
    await run("qemu-img", ["convert", "-U", ...(snapshot ? ["-l", `snapshot.name=${snapshot}`] : []), "-O", "raw", vm.disk, tmp], { timeoutMs: 3_600_000 });
    return await hashFile(tmp);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Temp files of hashes whose process is gone (a server killed mid-hash): they can be as big as the data. */
async function removeStaleHashFiles(vm: VmLayout): Promise<void> {
  for (const name of await readdir(vm.dir).catch(() => [] as string[])) {
    const pid = /^\.hash-(\d+)-[0-9a-f]+\.raw$/.exec(name)?.[1];
    if (pid && !existsSync(`/proc/${pid}`)) await rm(join(vm.dir, name), { force: true });
  }
}

/** Background hashes of this process, by VM disk, snapshot name and time. */
const pendingHashes = new Map<string, Promise<string>>();
const hashKey = (vm: VmLayout, snap: Pick<SnapshotInfo, "name" | "createdAt">) => `${vm.disk}\0${snap.name}\0${snap.createdAt}`;

function hashInBackground(vm: VmLayout, snap: SnapshotInfo): void {
  const key = hashKey(vm, snap);
  const promise = contentSha256(vm, snap.name);
  pendingHashes.set(key, promise);
  void promise
    .then((sum) => withLock(vm.lock, () => recordChecksum(vm, snap, sum), 600_000))
    .catch(() => undefined) // deleted meanwhile, or the VM dir is gone: hashed again when a revert needs it
    .finally(() => pendingHashes.delete(key));
}

/** Records a checksum for that very snapshot (same name and time), unless one is there. Caller holds the lock. */
async function recordChecksum(vm: VmLayout, snap: Pick<SnapshotInfo, "name" | "createdAt" | "consistency">, checksum: string): Promise<void> {
  const meta = await readSnapshotMeta(vm);
  const note = meta[snap.name];
  if (note?.checksum || (note?.createdAt !== undefined && note.createdAt !== snap.createdAt)) return;
  await writeSnapshotMeta(vm, { ...meta, [snap.name]: { consistency: note?.consistency ?? snap.consistency, createdAt: snap.createdAt, checksum } });
}

function checkName(name: string): string {
  const parsed = SnapshotNameSchema.safeParse(name);
  if (!parsed.success) throw new LifelineError("VALIDATION_FAILED", `Invalid snapshot name "${name}": ${parsed.error.issues[0]?.message ?? "invalid"}`);
  return name;
}

const running = (ref: { name: string }, what: string) =>
  new LifelineError("MACHINE_RUNNING", `Cannot ${what}: VM "${ref.name}" is running (stop it first, or pass stopIfRunning)`);
const attached = (ref: { name: string }, what: string) =>
  new LifelineError("DISK_ATTACHED", `Cannot ${what}: the disk of VM "${ref.name}" is attached for offline repair (detach it first)`);
