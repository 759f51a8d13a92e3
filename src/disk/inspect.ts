import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { readAccounts, type DiskAccounts } from "./accounts.js";
import { attachImage, attachLoop, type RawView } from "./attach.js";
import { DiskError, requireRoot } from "./errors.js";
import { probeImage, type ImageInfo } from "./image.js";
import { readPartitions, type Partition } from "./partitions.js";
import { DiskSession } from "./session.js";
import { detectOs, mountVolume, probeVolume, type DetectedOs, type VolumeProbe } from "./volumes.js";

export interface PartitionReport extends Partition, VolumeProbe {
  os: DetectedOs["kind"] | null;
  /** Why the partition could not be looked into, if it could not. */
  note: string | null;
}

export interface DiskReport {
  image: string;
  format: ImageInfo["format"];
  virtualSize: number;
  backingChain: string[];
  partitionTable: string;
  partitions: PartitionReport[];
  /** The partition holding the OS (the first found, or --partition), or null. */
  osPartition: number | null;
  os: (DiskAccounts & { partition: number }) | null;
}

export interface ScannedPartition {
  report: PartitionReport;
  device: string;
  mount: string | null;
  detected: DetectedOs | null;
}

/**
 * Attaches every partition read-only, mounts the ones with a known file system and looks for
 * an OS on each. The caller's session keeps it all attached until it is released.
 */
export async function scanDisk(session: DiskSession, info: ImageInfo): Promise<{ view: RawView; label: string; scanned: ScannedPartition[] }> {
  const view = await attachImage(session, info, { writable: false });
  const table = await readPartitions(view.path, info.virtualSize);
  const scanned: ScannedPartition[] = [];
  for (const part of table.partitions) {
    const device = await attachLoop(view, part.offset, part.number === 0 ? null : part.size, false);
    const probe = await probeVolume(device);
    const report: PartitionReport = { ...part, ...probe, os: null, note: null };
    let mount: string | null = null;
    let detected: DetectedOs | null = null;
    if (probe.encryption) report.note = `encrypted (${probe.encryption}): cannot be read without its key`;
    else if (probe.fs) {
      mount = join(session.mountRoot, `p${part.number}`);
      await mkdir(mount);
      try {
        await mountVolume(device, probe.fs, mount, false);
        detected = await detectOs(mount);
        report.os = detected?.kind ?? null;
      } catch (err) {
        report.note = (err as Error).message;
        mount = null;
      }
    }
    scanned.push({ report, device, mount, detected });
  }
  // Test hook: hold everything attached, so a test can interrupt a real run at its worst moment.
  const pause = Number(process.env["LIFELINE_DISK_TEST_PAUSE_MS"] ?? 0);
  if (pause > 0) await new Promise((r) => setTimeout(r, Math.min(pause, 60_000)));
  return { view, label: table.label, scanned };
}

/** The OS partition: --partition N if given (it must hold an OS), else the first with one. */
export function pickOsPartition(image: string, scanned: readonly ScannedPartition[], wanted?: number): ScannedPartition {
  if (wanted !== undefined) {
    const p = scanned.find((s) => s.report.number === wanted);
    if (!p) throw new DiskError("bad-partition", `Image "${image}" has no partition ${wanted} (it has: ${scanned.map((s) => s.report.number).join(", ")})`);
    if (p.report.encryption) throw encryptedError(image, p.report);
    if (!p.detected) throw new DiskError("no-os", `Partition ${wanted} of "${image}" holds no Linux or Windows system (${p.report.type ?? "no file system"}${p.report.note ? `: ${p.report.note}` : ""})`);
    return p;
  }
  const found = scanned.find((s) => s.detected);
  if (found) return found;
  const encrypted = scanned.find((s) => s.report.encryption);
  if (encrypted) throw encryptedError(image, encrypted.report);
  if (scanned.every((s) => s.report.type === null)) {
    throw new DiskError("not-image", `"${image}" holds no partition table and no file system: it does not look like a disk image`);
  }
  throw new DiskError("no-os", `No Linux (etc/shadow) or Windows (Windows/System32/config/SAM) system found on "${image}"`);
}

function encryptedError(image: string, p: PartitionReport): DiskError {
  return new DiskError(
    "encrypted-volume",
    `Partition ${p.number} of "${image}" is an encrypted volume (${p.encryption}); unlock it on a machine with its key (lifeline disk cannot edit encrypted volumes)`,
  );
}

export async function inspectDisk(image: string, opts: { partition?: number; now?: number } = {}): Promise<DiskReport> {
  requireRoot();
  const info = await probeImage(image);
  return DiskSession.with(info.path, async (session) => {
    const { label, scanned } = await scanDisk(session, info);
    const report: DiskReport = {
      image: info.path,
      format: info.format,
      virtualSize: info.virtualSize,
      backingChain: info.backingChain,
      partitionTable: label,
      partitions: scanned.map((s) => s.report),
      osPartition: null,
      os: null,
    };
    const picked = pickOsPartition(info.path, scanned, opts.partition);
    report.osPartition = picked.report.number;
    report.os = { partition: picked.report.number, ...(await readAccounts(picked.mount!, picked.detected!, opts.now)) };
    return report;
  });
}
