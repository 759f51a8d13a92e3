import { mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LabError } from "./errors.js";
import { unmountUnder } from "./mounts.js";

/**
 * Builds a cached artifact (`<root>/<key>/`) beside its final place, in `.<key>.tmp-<pid>`, and
 * renames it into place in one step with its manifest: a crash leaves no half-built directory
 * that a later run would take for a cached one. `make` fills the work dir and returns the
 * manifest (paths in it name the final dir). Failures remove the work dir; anything but a
 * LabError with its own code becomes LAB_IMAGE_BUILD_FAILED saying what was being built.
 * The caller holds the key's lock.
 */
export async function buildBesideThenRename<M extends object>(
  root: string,
  key: string,
  manifestName: string,
  what: string,
  make: (work: string, dir: string) => Promise<M>,
): Promise<M> {
  const dir = join(root, key);
  const work = join(root, `.${key}.tmp-${process.pid}`);
  await removeWorkDirs(root, key);
  await mkdir(work, { recursive: true });
  try {
    const manifest = await make(work, dir);
    await writeFile(join(work, manifestName), `${JSON.stringify(manifest, null, 2)}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(work, dir);
    return manifest;
  } catch (err) {
    await removeWorkDirs(root, key).catch(() => undefined);
    if (err instanceof LabError && err.code !== "LAB_COMMAND_FAILED") throw err;
    throw new LabError("LAB_IMAGE_BUILD_FAILED", `Cannot build ${what}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Half-built dirs of this key (the caller holds its lock, so they belong to dead builds). A
 * killed debootstrap or chroot can leave /proc or /sys mounted inside: unmount before deleting.
 */
async function removeWorkDirs(root: string, key: string): Promise<void> {
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (!name.startsWith(`.${key}.tmp-`)) continue;
    await unmountUnder(join(root, name));
    await rm(join(root, name), { recursive: true, force: true });
  }
}
