/**
 * Mounts and loop devices, found from the kernel's own tables (/proc/self/mountinfo,
 * losetup --json) rather than from memory, so clean-up after a crash finds what a dead
 * process left behind.
 */
import { readFile } from "node:fs/promises";
import { run, runNeedingFeature } from "./exec.js";
import { isUnder } from "./paths.js";

function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** Mount points at or below dir, deepest (most recently stacked) first: the order to unmount. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  const points = info
    .split("\n")
    .filter(Boolean)
    .map((line) => unescapeMountPath(line.split(" ")[4] ?? ""))
    .filter((p) => isUnder(p, dir));
  return points.reverse();
}

export async function isMountPoint(dir: string): Promise<boolean> {
  const base = dir.replace(/\/+$/, "");
  return (await mountsUnder(base)).includes(base);
}

/** Unmounts everything at or below dir. A busy mount is detached lazily as a last resort. */
export async function unmountUnder(dir: string): Promise<void> {
  for (const point of await mountsUnder(dir)) {
    const plain = await run("umount", [point], { allowFailure: true });
    if (plain.exitCode !== 0 && (await mountsUnder(point)).includes(point)) {
      await run("umount", ["-l", point]);
    }
  }
}

export interface LoopDevice {
  name: string;
  backFile: string;
}

export async function loopDevices(): Promise<LoopDevice[]> {
  const out = await run("losetup", ["--list", "--json", "--output", "NAME,BACK-FILE"]);
  if (!out.stdout.trim()) return [];
  const parsed = JSON.parse(out.stdout) as { loopdevices?: Array<{ name: string; "back-file": string | null }> };
  return (parsed.loopdevices ?? []).map((d) => ({
    name: d.name,
    // The kernel appends " (deleted)" when the backing file was removed.
    backFile: (d["back-file"] ?? "").replace(/ \(deleted\)$/, ""),
  }));
}

export async function loopsBackedUnder(dir: string): Promise<LoopDevice[]> {
  return (await loopDevices()).filter((d) => isUnder(d.backFile, dir));
}

export async function attachLoop(file: string): Promise<string> {
  const out = await runNeedingFeature("loop devices", LOOP_MISSING, "losetup", ["--find", "--show", file]);
  return out.stdout.trim();
}

const LOOP_MISSING = /cannot find an unused loop device|No such device|loop-control/i;
export const FS_MISSING = /unknown filesystem type|No such device/i;

/** Mounts a filesystem image's block device; a missing filesystem driver is a typed error. */
export async function mountDevice(fstype: string, device: string, dir: string): Promise<void> {
  await runNeedingFeature(`the ${fstype} filesystem`, FS_MISSING, "mount", ["-t", fstype, device, dir]);
}

/**
 * Detaches every loop device backed by the file (or by files under the directory). A device
 * still open elsewhere (a mount being torn down, a helper of a crashed run) is only marked
 * for auto-clear by the kernel, so this waits, briefly, until the devices are really gone.
 */
export async function detachLoopsBackedBy(fileOrDir: string, waitMs = 5_000): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const devices = await loopsBackedUnder(fileOrDir);
    if (devices.length === 0 || Date.now() > deadline) return;
    for (const dev of devices) await run("losetup", ["--detach", dev.name], { allowFailure: true });
    if ((await loopsBackedUnder(fileOrDir)).length === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
