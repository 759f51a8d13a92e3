/**
 * Checks that this machine can run the lab, so a missing piece fails with one clear error
 * instead of a confusing message from halfway through `up`.
 */
import { spawnSync } from "node:child_process";
import { access, readFile } from "node:fs/promises";
import { constants } from "node:fs";
import { join } from "node:path";
import { LabError } from "./errors.js";
import { SYSTEM_PATH } from "./exec.js";

/** Which Debian package provides each program, for the error message. */
const TOOL_PACKAGES: Record<string, string> = {
  debootstrap: "debootstrap",
  samba: "samba-ad-dc",
  "samba-tool": "samba-ad-provision",
  "mkfs.ext4": "e2fsprogs",
  "mkfs.xfs": "xfsprogs",
  ip: "iproute2",
  losetup: "mount",
  mount: "mount",
  umount: "mount",
  nsenter: "util-linux",
  unshare: "util-linux",
  pivot_root: "util-linux",
  chroot: "coreutils",
  cp: "coreutils",
  truncate: "coreutils",
};

export async function findTool(name: string): Promise<string | undefined> {
  for (const dir of SYSTEM_PATH.split(":")) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next directory
    }
  }
  return undefined;
}

export function assertRoot(what: string): void {
  if (typeof process.geteuid === "function" && process.geteuid() !== 0) {
    throw new LabError("LAB_NOT_ROOT", `Cannot ${what}: the lab needs root (namespaces, mounts, loop devices)`);
  }
}

async function missingTools(names: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const name of names) if (!(await findTool(name))) missing.push(name);
  return missing;
}

/** apt-get as a child process with an argv array; the package lists are refreshed first. */
function aptInstall(packages: readonly string[]): boolean {
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive", PATH: "/usr/sbin:/usr/bin:/sbin:/bin" };
  const run = (args: string[]) => spawnSync("apt-get", args, { env, stdio: ["ignore", "ignore", "inherit"] }).status === 0;
  return run(["update", "-qq"]) && run(["install", "-y", "-qq", "--no-install-recommends", ...packages]);
}

/**
 * Makes sure the programs exist. As root on a Debian-like machine, missing packages are
 * installed with apt-get (the lab's image build and hosts need them); otherwise a clear error.
 */
export async function assertTools(names: readonly string[]): Promise<void> {
  let missing = await missingTools(names);
  const isRoot = typeof process.geteuid === "function" && process.geteuid() === 0;
  if (missing.length > 0 && isRoot && (await findTool("apt-get"))) {
    aptInstall([...new Set(missing.map((m) => TOOL_PACKAGES[m] ?? m))]);
    missing = await missingTools(names);
  }
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((m) => TOOL_PACKAGES[m] ?? m))];
    throw new LabError("LAB_TOOL_MISSING", `Missing programs: ${missing.join(", ")} (apt-get install ${pkgs.join(" ")})`);
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Namespaces, loop devices and XFS: everything `up` relies on from the kernel. */
export async function assertKernelFeatures(): Promise<void> {
  const missing: string[] = [];
  for (const ns of ["net", "pid", "mnt", "uts", "ipc"]) {
    if (!(await exists(`/proc/self/ns/${ns}`))) missing.push(`${ns} namespaces`);
  }
  if (!(await exists("/dev/loop-control"))) missing.push("loop devices (/dev/loop-control)");
  const filesystems = await readFile("/proc/filesystems", "utf8").catch(() => "");
  const release = (await readFile("/proc/sys/kernel/osrelease", "utf8").catch(() => "")).trim();
  // A filesystem module not loaded yet is not listed; mount loads it when modules exist.
  const canLoadModules = release !== "" && (await exists(`/lib/modules/${release}`));
  for (const fs of ["xfs", "ext4"]) {
    if (!new RegExp(`\\s${fs}$`, "m").test(filesystems) && !canLoadModules) missing.push(`${fs} filesystem`);
  }
  if (missing.length > 0) {
    throw new LabError("LAB_KERNEL_FEATURE_MISSING", `This kernel lacks what the lab needs: ${missing.join(", ")}`);
  }
}

export const HOST_TOOLS = ["ip", "losetup", "mount", "umount", "nsenter", "unshare", "pivot_root", "mkfs.xfs", "cp", "truncate"];
export const IMAGE_TOOLS = ["debootstrap", "mkfs.ext4", "chroot", "truncate"];
