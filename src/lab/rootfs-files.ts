/**
 * Writing into a host's mounted disk from the machine. The disk belongs to the host, whose
 * root may have made any path a symlink: followed from the machine, "/etc/hosts -> /etc/shadow"
 * would overwrite the machine's own file. So every component is checked, never followed.
 */
import { constants } from "node:fs";
import { lstat, mkdir, open, unlink } from "node:fs/promises";
import { join } from "node:path";
import { LabError } from "./errors.js";

/** A path inside a host: absolute, normalised, no "." or ".." components. */
export function assertHostPath(path: string): void {
  const parts = path.split("/").slice(1);
  if (!path.startsWith("/") || path === "/" || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new LabError("LAB_INVALID_ARGUMENT", `Invalid path ${JSON.stringify(path)}: use an absolute path without . or ..`);
  }
}

/** Makes (or checks) each directory of hostPath under root, refusing symlinks on the way. */
export async function ensureDirInRoot(root: string, hostPath: string): Promise<string> {
  assertHostPath(hostPath);
  let current = root;
  for (const part of hostPath.split("/").slice(1)) {
    current = join(current, part);
    const info = await lstat(current).catch(() => undefined);
    if (!info) await mkdir(current, { mode: 0o755 });
    else if (!info.isDirectory()) {
      throw new LabError("LAB_INVALID_ARGUMENT", `${hostPath} in the host is not a plain directory at ${current.slice(root.length)}`);
    }
  }
  return current;
}

/** Writes a file at hostPath inside root; a symlink in its place is replaced, never followed. */
export async function writeFileInRoot(root: string, hostPath: string, content: string, mode = 0o644): Promise<void> {
  assertHostPath(hostPath);
  const slash = hostPath.lastIndexOf("/");
  const dir = slash === 0 ? root : await ensureDirInRoot(root, hostPath.slice(0, slash));
  const file = join(dir, hostPath.slice(slash + 1));
  const info = await lstat(file).catch(() => undefined);
  if (info && !info.isFile()) await unlink(file);
  const fh = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, mode);
  try {
    await fh.writeFile(content);
    await fh.chmod(mode);
  } finally {
    await fh.close();
  }
}

/** An empty file or a directory to bind-mount onto, made without following symlinks. */
export async function ensureBindTarget(root: string, hostPath: string, directory: boolean): Promise<void> {
  if (directory) {
    await ensureDirInRoot(root, hostPath);
    return;
  }
  const info = await lstat(join(root, hostPath)).catch(() => undefined);
  if (info?.isFile()) return;
  await writeFileInRoot(root, hostPath, "");
}
