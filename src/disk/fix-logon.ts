import { randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { LifelineError, type Account } from "../protocol/index.js";
import { cryptSalt, sha512Crypt } from "../repair/sha512-crypt.js";
import { editShadowOnDisk, type ShadowEdit } from "../repair/shadow-file.js";
import { dayNumber, diagnose, lines, parsePasswd, parseShadowLine } from "../repair/shadow.js";
import { inspectGpoStartup } from "../repair/gpo-startup.js";
import { fixWindowsAccount, windowsAccount, type WindowsFix } from "../repair/windows-volume.js";
import { readNoFollow } from "./accounts.js";
import { createBackup, sha256File, type BackupRecord } from "./backup.js";
import { DiskError, requireRoot } from "./errors.js";
import { probeImage, refuseReadOnly, type ImageInfo } from "./image.js";
import { pickOsPartition, scanDisk } from "./inspect.js";
import { mountPartitionWritable } from "./os-volume.js";
import { DiskSession } from "./session.js";

export type DiskFix = { kind: "set-password"; password: string } | { kind: "keep-password" };
/** Windows only: edit the SAM (keep-password), or the seed's Group Policy startup script (runs at next boot). */
export type WindowsMethod = "sam" | "startup-script";

export interface FixDiskOptions {
  image: string;
  user: string;
  fix: DiskFix;
  /** Windows: default sam for --keep-password, startup-script for a new password (the only way offline). */
  method?: WindowsMethod;
  /** Windows: also enable a disabled account (never done unasked: it may be disabled on purpose). */
  enable?: boolean;
  partition?: number;
  noBackup?: boolean;
  now?: number;
  /** Progress lines (to stderr in the CLI). */
  log?: (line: string) => void;
}

export interface FixDiskResult {
  image: string;
  format: ImageInfo["format"];
  partition: number;
  os: "linux" | "windows";
  user: string;
  action: "set-password" | "clear-flag";
  /** How: the Linux shadow, the Windows SAM, or a startup script that acts at the next boot. */
  method: "shadow" | WindowsMethod;
  /** startup-script: the new password is on the disk (Administrators/SYSTEM only) until that boot. */
  pendingUntilBoot: boolean;
  before: Account;
  after: Account;
  /** sha256 of the image file before anything was changed. */
  originalSha256: string;
  backup: BackupRecord | null;
  /** Re-read after the disk was detached and attached again, read-only: the shadow line, the SAM, or the script entry. */
  verified: true;
}

/**
 * `lifeline disk fix-logon`: refuse early (read-only look first), back up, edit (Linux: etc/shadow
 * through repair/shadow-file.ts; Windows: repair/windows-volume.ts), detach, then attach again
 * read-only and check that the disk says what was intended.
 */
export async function fixDiskLogon(opts: FixDiskOptions): Promise<FixDiskResult> {
  requireRoot();
  const log = opts.log ?? (() => undefined);
  const now = opts.now ?? Date.now();
  const info = await probeImage(opts.image);
  await refuseReadOnly(info.path);

  // 1. Look before touching: OS, user and its state; every bad input is refused here, image unchanged.
  log(`inspecting ${info.path} (${info.format})`);
  const partition = await DiskSession.with(info.path, async (session) => {
    const { scanned } = await scanDisk(session, info);
    const picked = pickOsPartition(info.path, scanned, opts.partition);
    const os = picked.detected!.kind;
    if (os === "linux") await currentAccount(picked.mount!, opts.user, now);
    else await currentWindowsAccount(picked.mount!, opts.user, now);
    return { number: picked.report.number, fs: picked.report.fs!, os };
  });
  const method: FixDiskResult["method"] = partition.os === "linux" ? "shadow" : (opts.method ?? (opts.fix.kind === "keep-password" ? "sam" : "startup-script"));
  if (partition.os === "linux" && opts.enable) throw new DiskError("bad-partition", "--enable is for Windows disks; this one holds Linux");
  if (partition.os === "linux" && opts.method) throw new DiskError("bad-partition", `--method ${opts.method} is for Windows disks; this one holds Linux`);
  if (method === "sam" && opts.fix.kind === "set-password") {
    throw new LifelineError("USAGE", "A new Windows password cannot be written into the SAM offline (Windows stores it encrypted with the boot key): use --method startup-script, or --keep-password");
  }

  // 2. Backup, with the checksum of the image as it was.
  log("hashing the image");
  const originalSha256 = await sha256File(info.path);
  let backup: BackupRecord | null = null;
  if (!opts.noBackup) {
    log("backing up");
    backup = await createBackup(info, originalSha256, `before fix-logon ${opts.user}`, new Date(now));
  }

  // 3. Edit.
  const hash = partition.os === "linux" && opts.fix.kind === "set-password" ? sha512Crypt(Buffer.from(opts.fix.password, "utf8"), cryptSalt()) : null;
  const edit: ShadowEdit = hash ? { kind: "set-password", hash, mustChange: false } : { kind: "clear-flag" };
  const scriptId = `disk${randomBytes(6).toString("hex")}`;
  log(`editing ${partition.os === "linux" ? "etc/shadow" : method === "sam" ? "the SAM hive" : "the Group Policy startup scripts"} on partition ${partition.number}`);
  let edited: { before: Account; after: Account };
  try {
    edited = await DiskSession.with(info.path, async (session) => {
      const mount = await mountPartitionWritable(session, info, partition);
      if (partition.os === "linux") return editShadowOnDisk(mount, opts.user, edit, { now });
      const enable = opts.enable === true;
      const fix: WindowsFix =
        method === "sam"
          ? { kind: "keep-password", enable }
          : { kind: "startup-script", id: scriptId, enable, action: opts.fix.kind === "set-password" ? { kind: "reset-password", password: opts.fix.password } : { kind: "clear-flag" } };
      return fixWindowsAccount(mount, opts.user, fix, { now: new Date(now) });
    });
    await fsyncFile(info.path);

    // 4. Verify from a fresh, read-only attachment: what the next boot will read.
    log("verifying");
    await DiskSession.with(info.path, async (session) => {
      const { scanned } = await scanDisk(session, await probeImage(info.path));
      const p = scanned.find((s) => s.report.number === partition.number);
      if (!p?.mount) throw new DiskError("verify-failed", `Partition ${partition.number} cannot be mounted after the edit`);
      if (partition.os === "windows") return verifyWindows(p.mount, opts.user, method as WindowsMethod, scriptId, edited.after, now);
      const { account, hash: onDisk } = await currentAccount(p.mount, opts.user, now);
      const expectedHash = hash ?? onDisk;
      if (onDisk !== expectedHash || JSON.stringify(account) !== JSON.stringify(edited.after) || account.lastChangeDay !== dayNumber(now)) {
        throw new DiskError("verify-failed", `The shadow line of "${opts.user}" read back from the disk is not the one written (state ${account.state})`);
      }
    });
  } catch (err) {
    throw withRestoreHint(err, info.path, backup);
  }
  return {
    image: info.path,
    format: info.format,
    partition: partition.number,
    os: partition.os,
    user: opts.user,
    action: opts.fix.kind === "set-password" ? "set-password" : "clear-flag",
    method,
    pendingUntilBoot: method === "startup-script",
    before: edited.before,
    after: edited.after,
    originalSha256,
    backup,
    verified: true,
  };
}

/** The user's diagnosis and hash on a mounted root file system; a missing user is refused. */
async function currentAccount(root: string, user: string, now: number): Promise<{ account: Account; hash: string }> {
  const passwd = parsePasswd((await readNoFollow(join(root, "etc/passwd"))).toString("utf8")).find((p) => p.name === user);
  if (!passwd) throw new LifelineError("ACCOUNT_NOT_FOUND", `No account "${user}" in the disk's etc/passwd`);
  const shadowLines = lines((await readNoFollow(join(root, "etc/shadow"))).toString("utf8"));
  const index = shadowLines.findIndex((l) => l.split(":")[0] === user);
  if (index < 0) throw new LifelineError("ACCOUNT_NOT_FOUND", `No line for "${user}" in the disk's etc/shadow`);
  const entry = parseShadowLine(shadowLines[index]!, index + 1);
  const account = diagnose(passwd, entry, now);
  if (account.system) throw new LifelineError("ACCOUNT_IS_SYSTEM", `"${user}" is a system account (uid ${account.uid}); disk fix-logon leaves it alone`);
  return { account, hash: entry.hash };
}

async function currentWindowsAccount(root: string, user: string, now: number): Promise<Account> {
  const account = await windowsAccount(root, user, now);
  if (account.system) throw new LifelineError("ACCOUNT_IS_SYSTEM", `"${account.name}" is a built-in Windows account (RID ${account.uid}); disk fix-logon leaves it alone`);
  return account;
}

/** SAM: the account now reads as intended. Startup script: our entry is there and will run. */
async function verifyWindows(root: string, user: string, method: WindowsMethod, scriptId: string, intended: Account, now: number): Promise<void> {
  if (method === "sam") {
    const account = await windowsAccount(root, user, now);
    if (JSON.stringify(account) !== JSON.stringify(intended)) throw new DiskError("verify-failed", `The SAM entry of "${user}" read back from the disk is not the one written (state ${account.state})`);
    return;
  }
  const gpo = await inspectGpoStartup(root);
  if (!gpo.scriptsExtension || !gpo.scripts.some((e) => e.section === "Startup" && e.runs && e.lifelineId === scriptId && e.fileExists)) {
    throw new DiskError("verify-failed", `The startup script entry for "${user}" is not on the disk after the edit`);
  }
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, "r+");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function withRestoreHint(err: unknown, image: string, backup: BackupRecord | null): unknown {
  if (!(err instanceof LifelineError) || !backup) return err;
  return new LifelineError(err.code, `${err.message} (the image was backed up first: lifeline disk restore ${image} ${backup.name})`, { cause: err });
}
