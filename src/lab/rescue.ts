/**
 * Offline access to a stopped host's disk through a rescue host: a process with its own mount
 * (and empty network) namespace in which the disk image is loop-mounted read-write at
 * <labDir>/rescue/<host>, as a rescue VM would see a disk handed to it. The mount exists only
 * in that namespace; the server reaches the files through /proc/<rescue pid>/root. The Lab
 * records the rescue host in its state before mounting, refuses to start the target while its
 * disk is attached, and `down` stops rescue hosts.
 */
import { spawn } from "node:child_process";
import { mkdir, readdir, readFile, rmdir } from "node:fs/promises";
import { LabError } from "./errors.js";
import { run, SYSTEM_PATH } from "./exec.js";
import { attachLoop, detachLoopsBackedBy } from "./mounts.js";
import { isAlive, processRef, signal, waitFor } from "./procs.js";
import type { ProcessRef } from "./state.js";

const RESCUE_TAG = "lifeline-rescue";
// Fixed script; the loop device and mount path come as arguments. It stays the parent (no
// exec) so its command line keeps naming what it holds, for `down` after a lost state file.
const RESCUE_SCRIPT = 'mount -t ext4 -o rw "$1" "$2" || exit 1; echo ready; sleep 2147483647';

/** Where the server reaches an attached disk from its own namespace. */
export const rescueView = (holder: ProcessRef, mountPath: string) => `/proc/${holder.pid}/root${mountPath}`;

/** Starts a rescue host holding disk mounted at mountPath; onLoop records the loop device first. */
export async function startRescueHost(disk: string, mountPath: string, onLoop: (loop: string) => Promise<void>): Promise<ProcessRef> {
  await mkdir(mountPath, { recursive: true });
  // A loop left by a crash between attach and mount would be a second writer of the same disk.
  await detachLoopsBackedBy(disk);
  const loop = await attachLoop(disk);
  await onLoop(loop);
  const child = spawn("unshare", ["--mount", "--net", "--uts", "--propagation", "private", "--", "/bin/sh", "-c", RESCUE_SCRIPT, RESCUE_TAG, loop, mountPath], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: SYSTEM_PATH, LC_ALL: "C" },
  });
  const ready = await new Promise<boolean>((resolve) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("ready")) resolve(true);
    });
    child.once("exit", () => resolve(false));
    child.once("error", () => resolve(false));
  });
  child.stdout!.destroy();
  child.stderr!.destroy();
  child.unref();
  const ref = child.pid !== undefined ? await processRef(child.pid) : undefined;
  if (!ready || !ref) {
    await detachLoopsBackedBy(disk);
    throw new LabError("LAB_COMMAND_FAILED", `The rescue host could not mount ${disk}`);
  }
  return ref;
}

/** Unmounts inside the rescue host (the kernel writes everything back), stops it, frees the loop. */
export async function stopRescueHost(holder: ProcessRef | undefined, disk: string | undefined, mountPath: string): Promise<void> {
  if (holder && (await isAlive(holder))) {
    await run("nsenter", ["-t", String(holder.pid), "-m", "--", "umount", mountPath], { allowFailure: true });
    signal(-holder.pid, "SIGKILL"); // the script and its sleep: the namespace goes with them
    await waitFor(async () => !(await isAlive(holder)), 5_000);
  }
  if (disk) await detachLoopsBackedBy(disk);
  await rmdir(mountPath).catch(() => undefined);
}

/** Rescue hosts of a lab found by their command line (after a crash lost the state): stopped. */
export async function stopRescueHostsUnder(rescueDir: string): Promise<void> {
  for (const name of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const args = (await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "")).split("\0");
    const tag = args.indexOf(RESCUE_TAG);
    if (tag < 0 || !(args[tag + 2] ?? "").startsWith(rescueDir + "/")) continue;
    const ref = await processRef(Number(name));
    await stopRescueHost(ref, undefined, args[tag + 2]!).catch(() => undefined);
  }
}
