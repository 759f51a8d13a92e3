import { randomBytes } from "node:crypto";
import { constants, type FileHandle } from "node:fs/promises";
import { lstat, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export interface AtomicWriteOptions {
  /** Mode of a new file; an existing file keeps its own mode (and owner). */
  mode: number;
  /** Runs on the new temp file before anything is written to it: throw to refuse. */
  check?: (file: FileHandle, dir: string) => Promise<void>;
  /** What to throw when `path` exists but is not a regular file. */
  notRegular: (path: string, what: string) => Error;
}

/**
 * Replaces (or creates) `path` so a crash leaves the old or the new content, never a mix: a
 * temp file in the same directory (O_EXCL | O_NOFOLLOW), fsync, rename, fsync of the directory.
 * The disk being repaired is untrusted: a symlink or anything but a regular file at `path` is
 * refused, never followed. One writer for every file Lifeline edits on a disk (shadow, hive,
 * Group Policy files).
 */
export async function writeFileAtomically(path: string, data: Uint8Array | string, opts: AtomicWriteOptions): Promise<void> {
  const info = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (info && !info.isFile()) throw opts.notRegular(path, info.isSymbolicLink() ? "a symlink" : "not a regular file");
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.lifeline-${process.pid}-${randomBytes(6).toString("hex")}.tmp`);
  const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, info ? info.mode & 0o7777 : opts.mode);
  try {
    await opts.check?.(fh, dir);
    if (info) {
      await fh.chown(info.uid, info.gid);
      await fh.chmod(info.mode & 0o7777);
    }
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(temp, path);
  const d = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    // Some FUSE file systems (ntfs-3g) do not implement fsync on a directory; the rename is done either way.
    await d.sync().catch(() => undefined);
  } finally {
    await d.close();
  }
}
