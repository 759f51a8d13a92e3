/**
 * What the lab does with a host's disk besides booting it: snapshots (snapshots.ts) and
 * attaching it for offline repair (rescue.ts), with the lab lock held and the lab state kept.
 * The Lab class exposes these as methods (lab.snapshot(), lab.attachDisk(), ...).
 */
import { isMountPoint } from "./mounts.js";
import { assertHostName } from "./names.js";
import { netnsPids } from "./network.js";
import type { LabLayout } from "./paths.js";
import { assertRoot } from "./preflight.js";
import { haltHost } from "./host.js";
import { isAlive } from "./procs.js";
import { rescueView, startRescueHost, stopRescueHost } from "./rescue.js";
import {
  assertSnapshotName,
  createSnapshot,
  deleteSnapshot,
  ensureChecksum,
  getSnapshot,
  listSnapshots,
  recordChecksum,
  revertDisk,
  type LabSnapshot,
  type Quiesce,
} from "./snapshots.js";
import { LabError } from "./errors.js";
import type { HostState, LabState } from "./state.js";

/** The parts of a Lab these operations use. */
export interface HostDiskContext {
  layout: LabLayout;
  /** Runs fn holding the lab lock. */
  locked<T>(fn: () => Promise<T>): Promise<T>;
  requireHost(name: string): Promise<LabState>;
  save(state: LabState): Promise<void>;
  /** Stops the host (lock held) and records it. */
  halt(state: LabState, host: HostState): Promise<void>;
  /** Boots a stopped host again (lock held). */
  restart(state: LabState, host: HostState): Promise<void>;
}

export function diskAttached(host: string, what: string): LabError {
  return new LabError("LAB_DISK_ATTACHED", `Cannot ${what}: the disk of "${host}" is attached for offline repair (detach it first)`);
}

/**
 * Snapshot of the host's disk (O(1): a reflink in the store), crash-consistent: a running
 * host's root filesystem is frozen while the reflink is taken (its processes are paused
 * instead if it cannot be frozen); an attached disk's mount is frozen. The checksum is
 * hashed in the background (null until then; see snapshotChecksum).
 */
export async function snapshotHost(ctx: HostDiskContext, host: string, name: string): Promise<LabSnapshot> {
  assertHostName(host);
  assertSnapshotName(name);
  assertRoot(`snapshot host "${host}"`);
  return ctx.locked(async () => {
    const state = await ctx.requireHost(host);
    const h = state.hosts[host]!;
    let how: Quiesce = { kind: "stopped" };
    // fsfreeze opens the path and freezes that filesystem: through /proc/<pid>/root it reaches
    // the rescue host's mount from here, with the machine's own fsfreeze.
    if (h.attached?.rescue && (await isAlive(h.attached.rescue))) how = { kind: "freeze", mountPoint: rescueView(h.attached.rescue, h.attached.mountPath) };
    else if (await isAlive(h.init)) {
      const pids = () => netnsPids(h.netns);
      how = (await isMountPoint(h.root)) ? { kind: "freeze", mountPoint: h.root, fallbackPids: pids } : { kind: "pause", pids };
    }
    const dir = ctx.layout.snapshotDir(host);
    return createSnapshot({
      dir,
      host,
      name,
      disk: h.disk,
      how,
      onChecksum: (n, id, sum) => ctx.locked(() => recordChecksum(dir, n, id, sum)),
    });
  });
}

/** The host's finished snapshots, oldest first. */
export async function listHostSnapshots(ctx: HostDiskContext, host: string): Promise<LabSnapshot[]> {
  assertHostName(host);
  await ctx.requireHost(host);
  return listSnapshots(ctx.layout.snapshotDir(host));
}

/** The snapshot's checksum, waiting for (or doing) the hash when it is not recorded yet. */
export async function hostSnapshotChecksum(ctx: HostDiskContext, host: string, name: string): Promise<string> {
  assertHostName(host);
  assertSnapshotName(name);
  await ctx.requireHost(host);
  const dir = ctx.layout.snapshotDir(host);
  await getSnapshot(dir, host, name);
  return ensureChecksum(dir, host, name);
}

/**
 * Makes the host's disk byte-for-byte the snapshot (reflink back, then the disk's sha256 is
 * compared with the snapshot's). Refused while the host runs (LAB_HOST_RUNNING) unless
 * stopIfRunning: then the host is stopped, reverted and started again. Refused while the
 * disk is attached (LAB_DISK_ATTACHED).
 */
export async function revertHost(ctx: HostDiskContext, host: string, name: string, opts: { stopIfRunning?: boolean } = {}): Promise<LabSnapshot> {
  assertHostName(host);
  assertSnapshotName(name);
  assertRoot(`revert host "${host}"`);
  return ctx.locked(async () => {
    const state = await ctx.requireHost(host);
    const h = state.hosts[host]!;
    const dir = ctx.layout.snapshotDir(host);
    await getSnapshot(dir, host, name);
    if (h.attached) throw diskAttached(host, "revert it");
    const running = await isAlive(h.init);
    if (running && !opts.stopIfRunning) {
      throw new LabError("LAB_HOST_RUNNING", `Cannot revert "${host}" to "${name}": refused while the host runs (stop it, or stopIfRunning)`);
    }
    // Known before the host goes down, so a snapshot still being hashed costs no downtime.
    await ensureChecksum(dir, host, name);
    // Also when stopped: a mount or loop device a crash left would keep serving the old disk.
    await ctx.halt(state, h);
    const reverted = await revertDisk(dir, host, name, h.disk);
    if (running) {
      await ctx.restart(state, h);
    }
    return reverted;
  });
}

export async function deleteHostSnapshot(ctx: HostDiskContext, host: string, name: string): Promise<void> {
  assertHostName(host);
  assertSnapshotName(name);
  assertRoot(`delete a snapshot of host "${host}"`);
  await ctx.locked(async () => {
    await ctx.requireHost(host);
    await deleteSnapshot(ctx.layout.snapshotDir(host), host, name);
  });
}

/**
 * Mounts a stopped host's disk read-write for offline repair and returns the mount path
 * (<labDir>/rescue/<host>). Refused while the host runs (LAB_HOST_RUNNING); idempotent.
 * Until detachDisk, starting the host is refused (LAB_DISK_ATTACHED); `down` unmounts it.
 */
export async function attachHostDisk(ctx: HostDiskContext, host: string): Promise<string> {
  assertHostName(host);
  assertRoot(`attach the disk of host "${host}"`);
  return ctx.locked(async () => {
    const state = await ctx.requireHost(host);
    const h = state.hosts[host]!;
    if (await isAlive(h.init)) {
      throw new LabError("LAB_HOST_RUNNING", `Cannot attach the disk of "${host}": refused while the host runs (stop it first)`);
    }
    const mountPath = ctx.layout.rescueMount(host);
    if (h.attached?.rescue && (await isAlive(h.attached.rescue))) return rescueView(h.attached.rescue, mountPath);
    // Whatever a crashed stop or attach left (mounts, loop devices, a rescue host) goes first.
    await haltHost(h);
    await stopRescueHost(h.attached?.rescue, h.disk, mountPath);
    h.attached = { mountPath };
    await ctx.save(state);
    const rescue = await startRescueHost(h.disk, mountPath, async (loop) => {
      h.attached = { mountPath, loop };
      await ctx.save(state);
    });
    h.attached = { ...h.attached, rescue };
    await ctx.save(state);
    return rescueView(rescue, mountPath);
  });
}

/** Unmounts an attached disk and frees its loop device; the host can start again. Idempotent. */
export async function detachHostDisk(ctx: HostDiskContext, host: string): Promise<void> {
  assertHostName(host);
  assertRoot(`detach the disk of host "${host}"`);
  await ctx.locked(async () => {
    const state = await ctx.requireHost(host);
    const h = state.hosts[host]!;
    await stopRescueHost(h.attached?.rescue, h.disk, ctx.layout.rescueMount(host));
    if (h.attached) {
      delete h.attached;
      await ctx.save(state);
    }
  });
}
