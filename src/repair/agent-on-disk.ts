import { lstat, mkdir, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import { LifelineError } from "../protocol/index.js";

/**
 * Makes the Lifeline agent start again on a mounted disk (like EC2Rescue / az vm repair do
 * for their agents): removes the disable marker the lab and the install script honour, and
 * re-creates systemd's enable link when the unit is installed. Returns what it changed.
 * Paths are fixed and never follow a symlink planted on the disk.
 */
export const AGENT_DISABLED_MARKER = "etc/lifeline/agent-disabled";
const UNIT = "etc/systemd/system/lifeline-agent.service";
const WANTS_LINK = "etc/systemd/system/multi-user.target.wants/lifeline-agent.service";

async function kind(path: string): Promise<"file" | "symlink" | "dir" | "none"> {
  const info = await lstat(path).catch(() => undefined);
  return !info ? "none" : info.isSymbolicLink() ? "symlink" : info.isDirectory() ? "dir" : "file";
}

/** Refuses a path on the disk any of whose directories is a symlink (it could point off the disk). */
async function assertNoSymlinkDirs(root: string, relative: string): Promise<void> {
  const parts = relative.split("/").slice(0, -1);
  for (let i = 1; i <= parts.length; i++) {
    if ((await kind(join(root, ...parts.slice(0, i)))) === "symlink") {
      throw new LifelineError("SHADOW_INVALID", `/${parts.slice(0, i).join("/")} on the disk is a symlink; refusing to follow it`);
    }
  }
}

export async function reenableAgentOnDisk(root: string): Promise<string[]> {
  const changes: string[] = [];
  for (const path of [AGENT_DISABLED_MARKER, UNIT, WANTS_LINK]) await assertNoSymlinkDirs(root, path);
  const marker = join(root, AGENT_DISABLED_MARKER);
  if ((await kind(marker)) === "file") {
    await rm(marker);
    changes.push(`removed /${AGENT_DISABLED_MARKER}`);
  }
  if ((await kind(join(root, UNIT))) === "file" && (await kind(join(root, WANTS_LINK))) === "none") {
    const wants = join(root, "etc/systemd/system/multi-user.target.wants");
    if ((await kind(wants)) === "none") await mkdir(wants, { recursive: true });
    if ((await kind(wants)) === "dir") {
      await symlink(`/${UNIT}`, join(root, WANTS_LINK));
      changes.push("enabled lifeline-agent.service");
    }
  }
  return changes;
}
