import { writeFileAtomically } from "./atomic-write.js";
import { constants } from "node:fs";
import { lstat, open } from "node:fs/promises";
import { join } from "node:path";
import { LifelineError, type Account } from "../protocol/index.js";
import { dayNumber, diagnose, lines, parsePasswd, parseShadow, parseShadowLine, ShadowParseError } from "./shadow.js";

/**
 * Offline edit of /etc/shadow on a mounted disk: one user's line changes, every other byte
 * stays; the new file replaces the old atomically (temp + fsync + rename) with its mode and
 * owner. The disk is untrusted (it belongs to the machine being repaired): nothing is followed
 * through a symlink, and a file that does not parse is refused before anything is written.
 */
export type ShadowEdit = { kind: "set-password"; hash: string; mustChange: boolean } | { kind: "clear-flag" };

async function regularFileUnder(root: string, relative: string): Promise<string> {
  // Checked with lstat, not realpath: root may be /proc/<pid>/root/... (a rescue host's view).
  const etc = await lstat(join(root, "etc")).catch(() => undefined);
  if (!etc?.isDirectory()) throw new LifelineError("SHADOW_INVALID", "etc/ on the disk is missing or a symlink; refusing to follow it");
  const path = join(root, relative);
  const info = await lstat(path).catch(() => undefined);
  if (!info) throw new LifelineError("SHADOW_INVALID", `The disk has no ${relative}`);
  if (!info.isFile()) throw new LifelineError("SHADOW_INVALID", `${relative} on the disk is not a regular file`);
  return path;
}

async function readNoFollow(path: string): Promise<string> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return await fh.readFile("utf8");
  } finally {
    await fh.close();
  }
}

function parsed<T>(what: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof ShadowParseError) throw new LifelineError("SHADOW_INVALID", `${what} on the disk does not parse (${err.message}); nothing was changed`);
    throw err;
  }
}

/** Applies the edit to `user`'s line and returns the account before and after. */
export async function editShadowOnDisk(root: string, user: string, edit: ShadowEdit, opts: { allowSystem?: boolean; now?: number } = {}): Promise<{ before: Account; after: Account }> {
  const now = opts.now ?? Date.now();
  const passwdPath = await regularFileUnder(root, "etc/passwd");
  const shadowPath = await regularFileUnder(root, "etc/shadow");
  const passwdText = await readNoFollow(passwdPath);
  const shadowText = await readNoFollow(shadowPath);
  const entry = parsed("etc/passwd", () => parsePasswd(passwdText)).find((p) => p.name === user);
  parsed("etc/shadow", () => parseShadow(shadowText));
  if (!entry) throw new LifelineError("ACCOUNT_NOT_FOUND", `No account "${user}" in the disk's etc/passwd`);
  const all = lines(shadowText);
  const index = all.findIndex((l) => l.split(":")[0] === user);
  if (index < 0) throw new LifelineError("ACCOUNT_NOT_FOUND", `No line for "${user}" in the disk's etc/shadow`);
  const fields = all[index]!.split(":");
  const before = diagnose(entry, parseShadowLine(all[index]!, index + 1), now);
  if (before.system && !opts.allowSystem) {
    throw new LifelineError("ACCOUNT_IS_SYSTEM", `"${user}" is a system account (uid ${before.uid}); offline repair leaves it alone`);
  }
  if (edit.kind === "set-password") {
    if (!/^\$[0-9a-z]+\$[^:\n]+$/.test(edit.hash)) throw new LifelineError("INTERNAL", "refusing to write a malformed hash");
    fields[1] = edit.hash;
    fields[2] = edit.mustChange ? "0" : String(dayNumber(now));
  } else {
    // Keep the password: unlock it if it was locked, and restart its age from today.
    if (fields[1]!.startsWith("!") && fields[1]!.length > 2) fields[1] = fields[1]!.replace(/^!+/, "");
    fields[2] = String(dayNumber(now));
  }
  const newLine = fields.join(":");
  const after = diagnose(entry, parseShadowLine(newLine, index + 1), now);
  all[index] = newLine;
  const text = all.join("\n") + (shadowText.endsWith("\n") ? "\n" : "");
  await writeFileAtomically(shadowPath, text, { mode: 0o640, notRegular: (p, what) => new LifelineError("SHADOW_INVALID", `${p} is ${what}; refusing to replace it`) });
  return { before, after };
}

