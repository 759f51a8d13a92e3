/**
 * The lab's disk store: an XFS filesystem with reflink on a sparse loop file. Every host's
 * disk is a `cp --reflink=always` of the base image, which costs O(1) time and no space until
 * the host writes; later, snapshots are made the same way.
 */
import { mkdir, rename, rm, stat, chmod } from "node:fs/promises";
import { dirname } from "node:path";
import { run } from "./exec.js";
import { attachLoop, detachLoopsBackedBy, isMountPoint, mountDevice, unmountUnder } from "./mounts.js";
import type { LabLayout } from "./paths.js";

/** Sparse: it only takes the space the disks use. */
export const DEFAULT_STORE_SIZE = "32G";

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Makes (once) and mounts the store. Returns the loop device when it had to attach one. */
export async function mountStore(layout: LabLayout, size = DEFAULT_STORE_SIZE): Promise<string | undefined> {
  if (await isMountPoint(layout.store)) return undefined;
  await mkdir(layout.store, { recursive: true });
  if (!(await exists(layout.storeImage))) {
    const tmp = `${layout.storeImage}.tmp`;
    await run("truncate", ["-s", size, tmp]);
    await run("mkfs.xfs", ["-q", "-m", "reflink=1", "-L", "lifelinestor", tmp]);
    await rename(tmp, layout.storeImage);
  }
  // Loops left attached by a crash would keep a second reference to the same filesystem.
  await detachLoopsBackedBy(layout.storeImage);
  const loop = await attachLoop(layout.storeImage);
  await mountDevice("xfs", loop, layout.store);
  return loop;
}

export async function unmountStore(layout: LabLayout): Promise<void> {
  await unmountUnder(layout.store);
  await detachLoopsBackedBy(layout.storeImage);
}

/** Copies the image's disk into the store once; host disks are reflinks of this copy. */
export async function ensureBase(layout: LabLayout, imageKey: string, imageDisk: string): Promise<string> {
  const base = layout.storeBase(imageKey);
  if (await exists(base)) return base;
  await mkdir(dirname(base), { recursive: true });
  const tmp = `${base}.tmp-${process.pid}`;
  await run("cp", ["--sparse=always", imageDisk, tmp], { timeoutMs: 600_000 });
  await rename(tmp, base);
  return base;
}

/** A fresh disk for a new host: any disk left there by an earlier lab is replaced. */
export async function createHostDisk(layout: LabLayout, host: string, base: string): Promise<string> {
  const disk = layout.hostDisk(host);
  await mkdir(dirname(disk), { recursive: true, mode: 0o700 });
  const tmp = `${disk}.tmp`;
  await run("cp", ["--reflink=always", base, tmp]);
  // A host disk holds its shadow hashes and its agent's private keys: root only.
  await chmod(tmp, 0o600);
  await rename(tmp, disk);
  return disk;
}

export async function removeHostDisks(layout: LabLayout): Promise<void> {
  if (await isMountPoint(layout.store)) {
    await rm(dirname(layout.hostDiskDir("x")), { recursive: true, force: true });
  }
}
