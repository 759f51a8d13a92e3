/**
 * A Windows system volume mounted from outside (ntfs-3g): its local accounts, read from the SAM
 * hive, and the offline fixes for "must change password at next logon". Shared by every path
 * that repairs a Windows disk (`lifeline disk`, fix-logon's offline path).
 *
 * Two methods, chosen by what the user asked:
 * - keep the password (`sam`): edit the SAM hive directly (password last set = now, lockout
 *   cleared) and read it back. Takes effect at the next boot; nothing secret is written.
 * - a new password (`startup-script`): the seed's Group Policy startup script that runs
 *   `net user NAME PASSWORD` at the next boot and then deletes itself. The SAM cannot take a
 *   new password offline without computing NT hashes into the V value, which Windows then
 *   re-encrypts with the boot key; the script lets Windows do that itself. The password sits on
 *   the disk, readable only by Administrators and SYSTEM, until that boot.
 */
import { readFile } from "node:fs/promises";
import { LifelineError, type Account } from "../protocol/index.js";
import { AccountFindings, isWindowsSystemAccount } from "./account-findings.js";
import { installGpoStartup, type GpoStartupAction, type GpoStartupResult } from "./gpo-startup.js";
import { findPath } from "./ntfs-path.js";
import { Hive, writeHiveFileAtomically } from "./regf.js";
import { clearMustChange, enable, listSamUsers, unlock, type SamUser } from "./sam.js";

const SAM_PATH = ["Windows", "System32", "config", "SAM"] as const;
const DAY_MS = 86_400_000;
const invalid = (message: string) => new LifelineError("DISK_INVALID", message);

/** The SAM hive's path on the mounted volume, or undefined when it is not a Windows system volume. */
export async function samPath(mount: string): Promise<string | undefined> {
  const found = await findPath(mount, SAM_PATH, invalid);
  if (found && found.kind !== "file") throw invalid(`${SAM_PATH.join("/")} on the disk is not a regular file`);
  return found?.path;
}

async function requireSam(mount: string): Promise<string> {
  const path = await samPath(mount);
  if (!path) throw invalid(`${mount} has no ${SAM_PATH.join("/")}: not a Windows system volume`);
  return path;
}

async function readHive(path: string): Promise<Hive> {
  try {
    return Hive.parse(await readFile(path));
  } catch (err) {
    if (err instanceof LifelineError) throw err;
    throw invalid(`The SAM hive on the disk cannot be read: ${(err as Error).message}`);
  }
}

/** A SAM user as the project's Account: the same states as a Linux or domain account. */
export function samAccount(u: SamUser, now = Date.now()): Account {
  const f = new AccountFindings();
  if (u.flags.disabled) f.add("disabled", "account is disabled (SAM account control: ACB_DISABLED)");
  if (u.accountExpires && u.accountExpires.getTime() <= now) f.add("disabled", `account expired on ${u.accountExpires.toISOString().slice(0, 10)}`);
  if (u.flags.locked) f.add("locked", `account is locked out (ACB_AUTOLOCK, ${u.failedLogins} failed logons)`);
  if (!u.hasPassword && !u.flags.passwordNotRequired) f.add("no-password", "no password hash is set");
  if (u.passwordLastSet === null && !u.flags.passwordNeverExpires) f.add("must-change", "must change password at next logon (SAM password last set = 0)");
  return {
    name: u.name,
    uid: u.rid,
    gid: 513,
    home: "",
    shell: "",
    kind: "local",
    system: isWindowsSystemAccount(u.rid, !u.flags.disabled),
    ...f.verdict(),
    lastChangeDay: u.passwordLastSet === null ? 0 : Math.floor(u.passwordLastSet.getTime() / DAY_MS),
    maxDays: null,
    inactiveDays: null,
    expireDay: u.accountExpires ? Math.floor(u.accountExpires.getTime() / DAY_MS) : null,
  };
}

export async function windowsAccounts(mount: string, now = Date.now()): Promise<Account[]> {
  return listSamUsers(await readHive(await requireSam(mount))).map((u) => samAccount(u, now));
}

export async function windowsAccount(mount: string, user: string, now = Date.now()): Promise<Account> {
  const found = (await windowsAccounts(mount, now)).find((a) => a.name.toUpperCase() === user.toUpperCase());
  if (!found) throw new LifelineError("ACCOUNT_NOT_FOUND", `No local account "${user}" in the disk's SAM`);
  return found;
}

/** keep-password: the SAM edit. startup-script: the seed's script, for a new password (or to clear the flag at boot). */
export type WindowsFix = { kind: "keep-password"; enable?: boolean } | { kind: "startup-script"; id: string; action: GpoStartupAction; enable?: boolean };

export interface WindowsFixResult {
  method: "sam" | "startup-script";
  before: Account;
  /** What the SAM says now (sam), or still says until the next boot runs the script. */
  after: Account;
  script?: GpoStartupResult;
}

/**
 * The offline fix on a mounted Windows volume. Refuses a built-in account unless allowed, and
 * an account whose problem the method cannot fix (disabled: an administrator may have meant it).
 */
export async function fixWindowsAccount(mount: string, user: string, fix: WindowsFix, opts: { allowSystem?: boolean; now?: Date } = {}): Promise<WindowsFixResult> {
  const now = opts.now ?? new Date();
  const path = await requireSam(mount);
  const hive = await readHive(path);
  const sam = listSamUsers(hive).find((u) => u.name.toUpperCase() === user.toUpperCase());
  if (!sam) throw new LifelineError("ACCOUNT_NOT_FOUND", `No local account "${user}" in the disk's SAM`);
  const before = samAccount(sam, now.getTime());
  if (before.system && !opts.allowSystem) throw new LifelineError("ACCOUNT_IS_SYSTEM", `"${sam.name}" is a built-in account (RID ${sam.rid}); pass --allow-system to change it anyway`);
  // Disabled may be on purpose (a leaver, an incident): enabled only when asked.
  if (sam.flags.disabled && !fix.enable) throw new LifelineError("ACCOUNT_CHANGE_FAILED", `"${sam.name}" is disabled (${before.evidence.join("; ")}); pass --enable if it should log in again`);
  if (before.problems.includes("disabled") && !sam.flags.disabled) throw new LifelineError("ACCOUNT_CHANGE_FAILED", `"${sam.name}" cannot log in: ${before.evidence.join("; ")}`);
  if (fix.kind === "startup-script") {
    const script = await installGpoStartup(mount, { id: fix.id, user: sam.name, action: fix.action, ...(fix.enable ? { enable: true } : {}) });
    return { method: "startup-script", before, after: before, script };
  }
  const mustChange = sam.passwordLastSet === null && !sam.flags.passwordNeverExpires;
  const enabling = sam.flags.disabled && fix.enable === true;
  if (mustChange) clearMustChange(hive, sam.name, now);
  if (sam.flags.locked) unlock(hive, sam.name);
  if (enabling) enable(hive, sam.name);
  if (mustChange || sam.flags.locked || enabling) await writeHiveFileAtomically(path, hive.toBytes());
  // Read back from the disk, not from memory: what Windows will find at boot.
  return { method: "sam", before, after: await windowsAccount(mount, sam.name, now.getTime()) };
}
