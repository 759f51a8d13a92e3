/**
 * Removing a lab: everything it made, found from the kernel's own tables (netns list,
 * mountinfo, losetup, /proc) as well as from the state file, so it also cleans up after a
 * crash or a lost state file.
 */
import { rm, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { removeHostDisks, unmountStore } from "./disk-store.js";
import { run } from "./exec.js";
import { haltHost, killNetnsProcesses } from "./host.js";
import { detachLoopsBackedBy, isMountPoint, mountsUnder, unmountUnder } from "./mounts.js";
import type { netnsNames } from "./names.js";
import { deleteNetns, deleteRootVeth, listNetns } from "./network.js";
import { isUnder, type LabLayout } from "./paths.js";
import { processesWithOpen, settleAll, signal } from "./procs.js";
import { stopRescueHostsUnder } from "./rescue.js";
import { cancelHashesUnder } from "./snapshots.js";
import { readState, removeState } from "./state.js";

/**
 * A filesystem left frozen (a process that died between fsfreeze -f and -u) blocks every
 * writer in uninterruptible sleep, so neither SIGKILL nor umount would work: thaw first.
 * Thawing a filesystem that is not frozen fails harmlessly.
 */
async function thawUnder(dir: string): Promise<void> {
  for (const point of await mountsUnder(dir)) await run("fsfreeze", ["--unfreeze", point], { allowFailure: true });
}

/**
 * Processes, mounts, loop devices, namespaces, veths and host disks, in the order that lets
 * each go (nothing can be unmounted while a process uses it). store.img stays unless purge:
 * it caches the base image for the next `up`.
 */
export async function teardownLab(
  layout: LabLayout,
  names: ReturnType<typeof netnsNames>,
  opts: { purge?: boolean },
): Promise<void> {
  const state = await readState(layout.stateFile).catch(() => undefined);
  // This process's own readers of the store (background snapshot hashes) let go first.
  await cancelHashesUnder(layout.store);
  // Disks attached for offline repair: thaw (a crash mid-snapshot can leave one frozen) and unmount.
  await thawUnder(layout.rescueDir);
  await stopRescueHostsUnder(layout.rescueDir);
  await unmountUnder(layout.rescueDir);
  await thawUnder(join(layout.dir, "hosts"));
  const hostNetns = new Set(Object.values(state?.hosts ?? {}).map((h) => h.netns));
  for (const ns of await listNetns()) {
    if (ns.startsWith(names.prefix) && ns !== names.bridgeNetns) hostNetns.add(ns);
  }
  // Known hosts get the graceful stop; whatever else is in a lab namespace is killed.
  await settleAll(Object.values(state?.hosts ?? {}).map((h) => haltHost(h)));
  for (const ns of hostNetns) await killNetnsProcesses(ns);
  const storeFile = (path: string) => isUnder(path, layout.store) || path.startsWith(layout.storeImage);
  for (const pid of await processesWithOpen(storeFile)) signal(pid, "SIGKILL");
  await unmountUnder(join(layout.dir, "hosts"));
  await detachLoopsBackedBy(layout.store);
  await removeHostDisks(layout);
  await unmountStore(layout);
  await detachLoopsBackedBy(layout.dir);
  for (const ns of hostNetns) await deleteNetns(ns);
  await deleteNetns(names.bridgeNetns);
  await deleteRootVeth(names);
  // Never recursive-delete through a mount that is still there: it would empty a disk.
  for (const dir of [join(layout.dir, "hosts"), layout.rescueDir]) {
    if ((await mountsUnder(dir)).length === 0) await rm(dir, { recursive: true, force: true });
  }
  // The lab domain's database and keys (its samba died with its namespace above).
  await rm(join(layout.dir, "domain"), { recursive: true, force: true });
  await removeState(layout.stateFile);
  if (opts.purge) {
    await rm(layout.storeImage, { force: true });
    if (!(await isMountPoint(layout.store))) await rm(layout.store, { recursive: true, force: true });
    await rmdir(layout.dir).catch(() => undefined); // only if nothing else is in it
  }
}
