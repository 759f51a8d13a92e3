import { constants } from "node:fs";
import { lstat, open, readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { DiskError } from "./errors.js";
import { lastLines, tryTool } from "./run.js";

/** Image formats qemu can show as a raw disk; anything else is refused rather than guessed. */
export const SUPPORTED_FORMATS = ["raw", "qcow2", "vmdk", "vhdx", "vpc", "vdi"] as const;
export type ImageFormat = (typeof SUPPORTED_FORMATS)[number];

export interface ImageInfo {
  path: string;
  format: ImageFormat;
  virtualSize: number;
  /** Backing files below the image, nearest first (qcow2 chains). */
  backingChain: string[];
  snapshots: { name: string; createdAt: number }[];
}

interface QemuImgInfo {
  filename: string;
  format: string;
  "virtual-size": number;
  encrypted?: boolean;
  "backing-filename"?: string;
  "full-backing-filename"?: string;
  snapshots?: { name: string; "date-sec": number }[];
}

/** qemu's image locking refuses an image a running QEMU (or qemu-storage-daemon) holds. */
export const isLockError = (stderr: string): boolean => /Failed to get .*lock|Is another process using the image/i.test(stderr);

export function inUseError(path: string): DiskError {
  return new DiskError("in-use", `Image "${path}" is in use: a running QEMU or another process holds its lock; stop the VM first`);
}

/**
 * What the image is, read by `qemu-img info` (which also takes qemu's lock, so an image a VM
 * is running from is refused here, before anything is attached).
 */
export async function probeImage(image: string): Promise<ImageInfo> {
  const path = resolve(image);
  const st = await lstat(path).catch(() => undefined);
  if (!st) throw new DiskError("not-found", `Image "${path}" does not exist`);
  if (!st.isFile()) throw new DiskError("not-image", `"${path}" is not a regular file (block devices and symlinks are not handled)`);
  await refuseAttached(path);
  const r = await tryTool("qemu-img", ["info", "--output=json", "--backing-chain", path]);
  if (r.exitCode !== 0) {
    if (isLockError(r.stderr)) throw inUseError(path);
    throw new DiskError("not-image", `"${path}" is not a disk image qemu-img can open: ${lastLines(r.stderr)}`);
  }
  const chain = JSON.parse(r.stdout) as QemuImgInfo[];
  const top = chain[0];
  if (!top) throw new DiskError("not-image", `qemu-img reported nothing for "${path}"`);
  if (!(SUPPORTED_FORMATS as readonly string[]).includes(top.format)) {
    throw new DiskError("unsupported-format", `Image "${path}" has format "${top.format}"; supported: ${SUPPORTED_FORMATS.join(", ")}`);
  }
  if (chain.some((c) => c.encrypted)) {
    throw new DiskError("encrypted-image", `Image "${path}" is encrypted (qemu encryption); lifeline disk cannot open it without its key`);
  }
  return {
    path,
    format: top.format as ImageFormat,
    virtualSize: top["virtual-size"],
    backingChain: chain.slice(1).map((c) => c.filename),
    snapshots: (top.snapshots ?? []).map((s) => ({ name: s.name, createdAt: s["date-sec"] * 1000 })),
  };
}

/** A loop device or a mount on the image means someone is using it outside qemu's locks. */
export async function refuseAttached(path: string): Promise<void> {
  const loops = await tryTool("losetup", ["-j", path]);
  const dev = loops.stdout.trim().split("\n")[0]?.split(":")[0];
  if (dev) throw new DiskError("in-use", `Image "${path}" is attached as ${dev} (losetup); detach it first`);
  const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
  for (const line of mountinfo.split("\n")) {
    const source = line.split(" - ")[1]?.split(" ")[1];
    if (source === path) throw new DiskError("in-use", `Image "${path}" is mounted (at ${line.split(" ")[4]}); unmount it first`);
  }
}

/**
 * Refuses an image that must not be changed. Root ignores permission bits, so a 0444 image
 * (someone's way of saying "do not touch") is refused from its mode, and a read-only file
 * system or an immutable file from an open for writing (which changes nothing).
 */
export async function refuseReadOnly(path: string): Promise<void> {
  const st = await lstat(path);
  if ((st.mode & 0o222) === 0) {
    throw new DiskError("read-only", `Image "${path}" is read-only (mode ${(st.mode & 0o777).toString(8)}); make it writable if you mean it to be changed`);
  }
  try {
    const fh = await open(path, constants.O_RDWR | constants.O_NOFOLLOW);
    await fh.close();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DiskError("read-only", `Image "${path}" cannot be opened for writing (${code}); it is on a read-only file system or immutable`, { cause: err });
  }
}
