import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import type { Account } from "../protocol/index.js";
import { windowsAccounts } from "../repair/windows-volume.js";
import { diagnoseAll } from "../repair/shadow.js";
import type { DetectedOs } from "./volumes.js";

export type DiskAccounts = { kind: "linux" | "windows"; accounts: Account[] };

/** Reads a file of the untrusted disk without following a symlink planted in its place. */
export async function readNoFollow(path: string): Promise<Buffer> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** The accounts of the OS on a mounted volume (read from a copy in memory; the disk is not touched). */
export async function readAccounts(root: string, os: DetectedOs, now = Date.now()): Promise<DiskAccounts> {
  if (os.kind === "linux") {
    const passwd = (await readNoFollow(join(root, "etc/passwd"))).toString("utf8");
    const shadow = (await readNoFollow(join(root, "etc/shadow"))).toString("utf8");
    return { kind: "linux", accounts: diagnoseAll(passwd, shadow, now) };
  }
  return { kind: "windows", accounts: await windowsAccounts(root, now) };
}
