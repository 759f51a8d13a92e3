import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

/** NTFS names compare case-insensitively (Windows' upcase table; ASCII and Latin are what matter here). */
export const sameName = (a: string, b: string): boolean => a.toUpperCase() === b.toUpperCase();

export type Entry = { path: string; kind: "dir" | "file" | "other" };

/**
 * Finds `name` in `dir` as Windows would, though ntfs-3g (like any Linux mount) is
 * case-sensitive: `windows/SYSTEM32` must find `Windows/System32`. The disk is untrusted, so a
 * symlink (or reparse point) is refused, and so is a name that exists in two cases (Windows
 * would see one file; guessing which could edit the wrong one). `fail` makes the error.
 */
export async function findEntry(dir: string, name: string, shown: string, fail: (message: string) => Error): Promise<Entry | undefined> {
  const names = (await readdir(dir)).filter((n) => sameName(n, name));
  if (names.length > 1) throw fail(`${shown} exists more than once with different cases (${names.join(", ")}); refusing to guess`);
  if (names.length === 0) return undefined;
  const path = join(dir, names[0]!);
  const info = await lstat(path);
  if (info.isSymbolicLink()) throw fail(`${shown} on the disk is a symlink or reparse point; refusing to follow it`);
  return { path, kind: info.isDirectory() ? "dir" : info.isFile() ? "file" : "other" };
}

/** Walks `names` below `dir` case-insensitively; undefined at the first one missing. */
export async function findPath(dir: string, names: readonly string[], fail: (message: string) => Error): Promise<Entry | undefined> {
  let found: Entry | undefined = { path: dir, kind: "dir" };
  const shown: string[] = [];
  for (const name of names) {
    if (found.kind !== "dir") throw fail(`${shown.join("/")} on the disk is not a directory`);
    shown.push(name);
    found = await findEntry(found.path, name, shown.join("/"), fail);
    if (!found) return undefined;
  }
  return found;
}
