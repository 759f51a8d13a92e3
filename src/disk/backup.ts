import { lstat, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { hashFile } from "../lab/snapshots.js";
import { DiskError } from "./errors.js";
import { inUseError, isLockError, probeImage, refuseAttached, refuseReadOnly, type ImageInfo } from "./image.js";
import { lastLines, tryTool } from "./run.js";

/**
 * Backups taken before a disk is changed: a qcow2 internal snapshot (`qemu-img snapshot`), or
 * for single-file formats a reflink copy beside the image (O(1), same file system). A full
 * copy is not made silently: it doubles the disk's size and can take minutes, so without
 * reflink the user chooses --no-backup. Records (name, sha256 of the image before, when, why)
 * are kept beside the image in IMG.lifeline-backups.json so `disk backups` can list them.
 */
export type BackupKind = "qcow2-snapshot" | "reflink-copy";

export interface BackupRecord {
  name: string;
  kind: BackupKind;
  createdAt: string;
  /** "sha256:<hex>" of the image file before the change. */
  sha256: string;
  /** The copy, for reflink-copy backups. */
  file: string | null;
  reason: string;
}

export interface ListedBackup extends BackupRecord {
  /** false: recorded but gone (snapshot deleted, copy removed). */
  present: boolean;
}

export const indexPath = (image: string): string => `${image}.lifeline-backups.json`;
export const backupName = (now: Date): string => `lifeline-${now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}`;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

async function readIndex(image: string): Promise<BackupRecord[]> {
  const text = await readFile(indexPath(image), "utf8").catch(() => null);
  if (text === null) return [];
  try {
    return JSON.parse(text) as BackupRecord[];
  } catch (err) {
    throw new DiskError("tool-failed", `${indexPath(image)} does not parse; move it aside to go on`, { cause: err });
  }
}

async function writeIndex(image: string, records: readonly BackupRecord[]): Promise<void> {
  const tmp = `${indexPath(image)}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(records, null, 2) + "\n", { mode: 0o600 });
  await rename(tmp, indexPath(image));
}

export const sha256File = (path: string): Promise<string> => hashFile(path);

export async function createBackup(info: ImageInfo, sha256: string, reason: string, now = new Date()): Promise<BackupRecord> {
  const name = backupName(now);
  let record: BackupRecord;
  if (info.format === "qcow2") {
    const r = await tryTool("qemu-img", ["snapshot", "-c", name, info.path], { timeoutMs: 600_000 });
    if (r.exitCode !== 0) {
      if (isLockError(r.stderr)) throw inUseError(info.path);
      throw new DiskError("tool-failed", `Cannot snapshot "${info.path}": ${lastLines(r.stderr)}`);
    }
    record = { name, kind: "qcow2-snapshot", createdAt: now.toISOString(), sha256, file: null, reason };
  } else {
    if (info.format === "vmdk" && !(await singleFile(info.path))) {
      throw new DiskError("no-backup", `"${info.path}" is a multi-file vmdk: back it up yourself, then run again with --no-backup`);
    }
    const file = join(dirname(info.path), `${basename(info.path)}.${name}`);
    const r = await tryTool("cp", ["--reflink=always", "--preserve=mode,ownership,timestamps", info.path, file], { timeoutMs: 600_000 });
    if (r.exitCode !== 0) {
      await rm(file, { force: true });
      throw new DiskError(
        "no-backup",
        `Cannot back up "${info.path}" with a reflink copy (${lastLines(r.stderr, 1)}): its file system has no reflink (use XFS or btrfs), so copy the image yourself and run again with --no-backup`,
      );
    }
    record = { name, kind: "reflink-copy", createdAt: now.toISOString(), sha256, file, reason };
  }
  await writeIndex(info.path, [...(await readIndex(info.path)), record]);
  return record;
}

/** A vmdk descriptor can name extents in other files; only a monolithic one is one file. */
async function singleFile(path: string): Promise<boolean> {
  const r = await tryTool("qemu-img", ["info", "--output=json", "-U", path]);
  const info = JSON.parse(r.stdout || "{}") as { "format-specific"?: { data?: { extents?: { filename: string }[] } } };
  return (info["format-specific"]?.data?.extents ?? []).every((e) => e.filename === path);
}

export async function listBackups(image: string): Promise<ListedBackup[]> {
  const records = await readIndex(image);
  // -U: listing must work while a VM runs; it reads, never writes.
  const r = await tryTool("qemu-img", ["info", "--output=json", "-U", image]);
  const info = r.exitCode === 0 ? (JSON.parse(r.stdout) as { format: string; snapshots?: { name: string; "date-sec": number }[] }) : null;
  const snapshots = new Set((info?.snapshots ?? []).map((s) => s.name));
  const listed: ListedBackup[] = [];
  for (const rec of records) {
    const present = rec.kind === "qcow2-snapshot" ? snapshots.has(rec.name) : (await lstat(rec.file ?? "").catch(() => undefined))?.isFile() === true;
    listed.push({ ...rec, present });
  }
  // Snapshots someone else took are restorable too; they just have no record of ours.
  for (const s of info?.snapshots ?? []) {
    if (!records.some((rec) => rec.name === s.name)) {
      listed.push({ name: s.name, kind: "qcow2-snapshot", createdAt: new Date(s["date-sec"] * 1000).toISOString(), sha256: "", file: null, reason: "(not taken by lifeline)", present: true });
    }
  }
  return listed;
}

export interface RestoreResult {
  image: string;
  backup: string;
  kind: BackupKind;
  /** sha256 of the image after the restore; for a reflink copy it equals the recorded one. */
  sha256: string;
  checksumMatches: boolean | null;
}

export async function restoreBackup(image: string, name: string): Promise<RestoreResult> {
  if (!NAME.test(name)) throw new DiskError("backup-not-found", `Invalid backup name "${name}"`);
  const info = await probeImage(image);
  await refuseAttached(info.path);
  await refuseReadOnly(info.path);
  const backup = (await listBackups(info.path)).find((b) => b.name === name);
  if (!backup || !backup.present) throw new DiskError("backup-not-found", `Image "${info.path}" has no backup "${name}" (see lifeline disk backups)`);
  if (backup.kind === "qcow2-snapshot") {
    const r = await tryTool("qemu-img", ["snapshot", "-a", name, info.path], { timeoutMs: 600_000 });
    if (r.exitCode !== 0) {
      if (isLockError(r.stderr)) throw inUseError(info.path);
      throw new DiskError("tool-failed", `Cannot revert "${info.path}" to snapshot ${name}: ${lastLines(r.stderr)}`);
    }
    // The guest's disk is the snapshot's again; the file's own bytes differ (it now holds the snapshot table).
    return { image: info.path, backup: name, kind: backup.kind, sha256: await sha256File(info.path), checksumMatches: null };
  }
  const tmp = `${info.path}.restore-${process.pid}`;
  const r = await tryTool("cp", ["--reflink=always", "--preserve=mode,ownership,timestamps", backup.file!, tmp], { timeoutMs: 600_000 });
  if (r.exitCode !== 0) {
    await rm(tmp, { force: true });
    throw new DiskError("tool-failed", `Cannot copy ${backup.file} back: ${lastLines(r.stderr)}`);
  }
  const sum = await sha256File(tmp);
  if (backup.sha256 && sum !== backup.sha256) {
    await rm(tmp, { force: true });
    throw new DiskError("verify-failed", `Backup ${name} does not hash to its recorded checksum (${backup.sha256}); the image was left as it is`);
  }
  // Renamed into place: the image is either wholly the old or wholly the restored one.
  await rename(tmp, info.path);
  return { image: info.path, backup: name, kind: backup.kind, sha256: sum, checksumMatches: backup.sha256 ? true : null };
}
