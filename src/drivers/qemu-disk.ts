/**
 * The disk capability of the qemu driver: a stopped VM's disk.qcow2 attached read-write for
 * offline repair, through the same pieces `lifeline disk` uses (qemu-storage-daemon FUSE
 * export, a loop device, a mount), recorded in the VM dir (attach.json) so that a detach
 * after a server restart still releases it. The OS volume is found as `lifeline disk` finds it
 * (a partition table or a whole-disk file system; Linux or Windows): ext4 is mounted, NTFS
 * goes through ntfs-3g with `-o permissions`.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import { probeImage, refuseReadOnly } from "../disk/image.js";
import { findOsPartition, mountPartitionWritable } from "../disk/os-volume.js";
import { DiskSession, releaseState, type SessionState } from "../disk/session.js";
import { isMountPoint } from "../lab/mounts.js";
import type { VmLayout } from "./qemu-vm.js";

interface AttachRecord {
  version: 1;
  mountPath: string;
  session: SessionState;
}

/** Sessions this process opened, by VM dir: releasing one of ours also drops its state file. */
const sessions = new Map<string, DiskSession>();

async function readRecord(vm: VmLayout): Promise<AttachRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(vm.attach, "utf8")) as AttachRecord;
    return record.version === 1 ? record : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where the VM's disk is mounted, or undefined. A record whose mount is gone (released by
 * crash recovery, or a half-done attach) is cleaned up here, so it does not block start.
 */
export async function attachedMountPath(vm: VmLayout): Promise<string | undefined> {
  const record = await readRecord(vm);
  if (!record) return undefined;
  if (await isMountPoint(record.mountPath)) return record.mountPath;
  await release(vm, record);
  return undefined;
}

export async function isAttached(vm: VmLayout): Promise<boolean> {
  return (await attachedMountPath(vm)) !== undefined;
}

export async function attachDisk(vm: VmLayout): Promise<string> {
  // qemu-img info takes qemu's image lock: a VM that started meanwhile is refused here.
  const info = await probeImage(vm.disk);
  await refuseReadOnly(vm.disk);
  const partition = await findOsPartition(info);
  const session = await DiskSession.open(vm.disk);
  try {
    const mountPath = await mountPartitionWritable(session, info, partition);
    const record: AttachRecord = { version: 1, mountPath, session: session.state };
    await writeFile(vm.attach, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    sessions.set(vm.dir, session);
    return mountPath;
  } catch (err) {
    await session.release().catch(() => undefined);
    throw err;
  }
}

/** Idempotent: detaching a disk that is not attached does nothing. */
export async function detachDisk(vm: VmLayout): Promise<void> {
  const record = await readRecord(vm);
  if (!record && !sessions.has(vm.dir)) return;
  await release(vm, record);
}

async function release(vm: VmLayout, record: AttachRecord | undefined): Promise<void> {
  const session = sessions.get(vm.dir);
  if (session) {
    await session.release();
    sessions.delete(vm.dir);
  } else if (record) {
    // Attached by a process that is gone: release from the recorded state (mounts, loops, daemon).
    await releaseState(record.session);
  }
  await rm(vm.attach, { force: true });
}
