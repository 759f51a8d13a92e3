import { homedir } from "node:os";
import { isAbsolute, join, normalize } from "node:path";

/**
 * Where a server keeps its state when not told otherwise, and where its qemu driver finds VMs.
 * Shared by the server's settings and by commands that work beside a server (`lab vm`).
 */
export function defaultDataDir(): string {
  const base = process.env.XDG_DATA_HOME || join(homedir(), ".local", "share");
  return join(base, "lifeline");
}

/** The qemu driver's VM root: the setting if given, else the data dir's vms/. */
export function vmRootOf(settings: { dataDir?: string | undefined; vmRoot?: string | undefined }): string {
  return settings.vmRoot ?? join(settings.dataDir ?? defaultDataDir(), "vms");
}

/** An absolute path with nothing to resolve (no `..`, `.`, `//` or trailing `/`): the form roots and directories in settings must have. */
export function isAbsoluteNormalised(path: string): boolean {
  return isAbsolute(path) && normalize(path) === path && !path.endsWith("/");
}
