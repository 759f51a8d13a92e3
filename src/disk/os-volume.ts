import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { attachImage, attachLoop } from "./attach.js";
import { DiskError } from "./errors.js";
import type { ImageInfo } from "./image.js";
import { pickOsPartition, scanDisk } from "./inspect.js";
import { readPartitions } from "./partitions.js";
import { DiskSession } from "./session.js";
import { mountVolume, probeVolume, type FsType, type OsKind } from "./volumes.js";

export interface OsPartition {
  number: number;
  fs: FsType;
  os: OsKind;
}

/**
 * Which partition holds the OS, found from a read-only look (its own session, released before
 * returning): partitions that are not the OS are never mounted writable, not even for a
 * journal replay. `wanted` is --partition.
 */
export async function findOsPartition(info: ImageInfo, wanted?: number): Promise<OsPartition> {
  return DiskSession.with(info.path, async (session) => {
    const { scanned } = await scanDisk(session, info);
    const picked = pickOsPartition(info.path, scanned, wanted);
    return { number: picked.report.number, fs: picked.report.fs!, os: picked.detected!.kind };
  });
}

/**
 * Mounts that partition read-write inside `session` (which keeps it attached until released)
 * and returns the mount path. The partition is found again by number and must still hold the
 * same file system: the image may have changed since the read-only look.
 */
export async function mountPartitionWritable(session: DiskSession, info: ImageInfo, partition: Pick<OsPartition, "number" | "fs">): Promise<string> {
  const view = await attachImage(session, info, { writable: true });
  const part = (await readPartitions(view.path, info.virtualSize)).partitions.find((p) => p.number === partition.number);
  if (!part) throw new DiskError("tool-failed", `Partition ${partition.number} vanished between inspection and edit`);
  const device = await attachLoop(view, part.offset, part.number === 0 ? null : part.size, true);
  const probe = await probeVolume(device);
  if (probe.fs !== partition.fs) throw new DiskError("tool-failed", `Partition ${partition.number} changed file system (${partition.fs} → ${probe.fs ?? "none"})`);
  const mount = join(session.mountRoot, "os");
  await mkdir(mount);
  await mountVolume(device, partition.fs, mount, true);
  return mount;
}
