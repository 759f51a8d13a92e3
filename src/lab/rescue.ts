/**
 * Offline access to a stopped host's disk: the disk image loop-mounted read-write under
 * <labDir>/rescue/<host>, as a rescue machine would see a disk handed to it. The Lab records
 * the attachment in its state before mounting, refuses to start the host while it is attached,
 * and `down` unmounts it.
 */
import { mkdir, rmdir } from "node:fs/promises";
import { attachLoop, detachLoopsBackedBy, isMountPoint, mountDevice, unmountUnder } from "./mounts.js";

/** Mounts disk at mountPath (idempotent); onLoop records the loop device before the mount. */
export async function mountForRescue(disk: string, mountPath: string, onLoop: (loop: string) => Promise<void>): Promise<void> {
  await mkdir(mountPath, { recursive: true });
  if (await isMountPoint(mountPath)) return;
  // A loop left by a crash between attach and mount would be a second writer of the same disk.
  await detachLoopsBackedBy(disk);
  const loop = await attachLoop(disk);
  await onLoop(loop);
  await mountDevice("ext4", loop, mountPath);
}

/** Unmounts (the kernel writes everything back: no fsck needed) and frees the loop device. */
export async function unmountRescue(disk: string, mountPath: string): Promise<void> {
  await unmountUnder(mountPath);
  await detachLoopsBackedBy(disk);
  await rmdir(mountPath).catch(() => undefined);
}
