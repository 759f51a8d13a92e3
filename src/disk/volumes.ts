import { samPath } from "../repair/windows-volume.js";
import { lstat, open } from "node:fs/promises";
import { join, relative } from "node:path";
import { DiskError } from "./errors.js";
import { lastLines, tryTool } from "./run.js";

/** File systems lifeline can mount, and volumes it recognises but cannot open. */
export type FsType = "ext2" | "ext3" | "ext4" | "xfs" | "btrfs" | "ntfs";
export type Encryption = "LUKS" | "BitLocker";
const MOUNTABLE = new Set<string>(["ext2", "ext3", "ext4", "xfs", "btrfs", "ntfs"]);

export interface VolumeProbe {
  fs: FsType | null;
  /** What blkid called it, also for file systems lifeline does not mount (vfat, swap...). */
  type: string | null;
  label: string | null;
  uuid: string | null;
  encryption: Encryption | null;
}

/** blkid in low-level probe mode (no cache), plus the BitLocker header, which blkid may not know. */
export async function probeVolume(device: string): Promise<VolumeProbe> {
  const r = await tryTool("blkid", ["-p", "-o", "export", device]);
  const fields = new Map(
    r.stdout
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as const),
  );
  const type = fields.get("TYPE") ?? null;
  const head = Buffer.alloc(16);
  const fh = await open(device, "r");
  try {
    await fh.read(head, 0, 16, 0);
  } finally {
    await fh.close();
  }
  let encryption: Encryption | null = null;
  if (type === "crypto_LUKS" || head.subarray(0, 6).equals(Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]))) encryption = "LUKS";
  else if (type === "BitLocker" || head.subarray(3, 11).toString("latin1") === "-FVE-FS-") encryption = "BitLocker";
  return {
    fs: type !== null && MOUNTABLE.has(type) && encryption === null ? (type as FsType) : null,
    type: encryption ?? type,
    label: fields.get("LABEL") ?? null,
    uuid: fields.get("UUID") ?? null,
    encryption,
  };
}

/**
 * Mounts a volume of the disk being repaired. The disk is untrusted: never setuid, devices or
 * executables from it. Read-only mounts fall back to skipping the journal (ext: noload, xfs:
 * norecovery) because a crashed VM's journal cannot be replayed on a read-only device.
 * NTFS goes through ntfs-3g; writes use `-o permissions`, which repair/gpo-startup.ts needs.
 */
export async function mountVolume(device: string, fs: FsType, dir: string, writable: boolean): Promise<void> {
  const attempts: string[][] = [];
  if (fs === "ntfs") {
    attempts.push(["ntfs-3g", "-o", writable ? "permissions,nosuid,nodev,noexec" : "ro,nosuid,nodev,noexec", device, dir]);
  } else {
    const base = `${writable ? "rw" : "ro"},nosuid,nodev,noexec`;
    attempts.push(["mount", "-t", fs, "-o", base, device, dir]);
    if (!writable && fs !== "btrfs") attempts.push(["mount", "-t", fs, "-o", `${base},${fs === "xfs" ? "norecovery" : "noload"}`, device, dir]);
  }
  let stderr = "";
  for (const [file, ...args] of attempts) {
    const r = await tryTool(file!, args);
    if (r.exitCode === 0) return;
    stderr = r.stderr;
  }
  throw new DiskError("tool-failed", `Cannot mount ${fs} volume ${device}${writable ? " read-write" : ""}: ${lastLines(stderr)}`);
}

export type OsKind = "linux" | "windows";
export interface DetectedOs {
  kind: OsKind;
  /** Account database path under the mount (etc/shadow, or the SAM hive's real casing). */
  accountsFile: string;
}

const isFile = async (path: string): Promise<boolean> => (await lstat(path).catch(() => undefined))?.isFile() ?? false;
const isDir = async (path: string): Promise<boolean> => (await lstat(path).catch(() => undefined))?.isDirectory() ?? false;

/** The OS whose accounts live on this mounted volume, if any. Symlinks are never followed. */
export async function detectOs(root: string): Promise<DetectedOs | null> {
  if ((await isDir(join(root, "etc"))) && (await isFile(join(root, "etc/shadow"))) && (await isFile(join(root, "etc/passwd")))) {
    return { kind: "linux", accountsFile: "etc/shadow" };
  }
  const sam = await samPath(root);
  return sam ? { kind: "windows", accountsFile: relative(root, sam) } : null;
}
