import { ReasonedError, type ErrorCode } from "../protocol/index.js";

/** Why a disk operation was refused: `reason` is finer than the registry's code it maps to. */
export type DiskErrorReason =
  | "not-root"
  | "not-found"
  | "not-image"
  | "unsupported-format"
  | "encrypted-image"
  | "encrypted-volume"
  | "in-use"
  | "read-only"
  | "no-os"
  | "bad-partition"
  | "no-backup"
  | "backup-not-found"
  | "verify-failed"
  | "tool-failed";

const REASON_CODE: Record<DiskErrorReason, ErrorCode> = {
  "not-root": "FORBIDDEN",
  "not-found": "DISK_NOT_AN_IMAGE",
  "not-image": "DISK_NOT_AN_IMAGE",
  "unsupported-format": "DISK_NOT_AN_IMAGE",
  "encrypted-image": "DISK_ENCRYPTED",
  "encrypted-volume": "DISK_ENCRYPTED",
  "in-use": "DISK_IN_USE",
  "read-only": "DISK_READ_ONLY",
  "no-os": "DISK_NO_OS",
  "bad-partition": "USAGE",
  "no-backup": "DISK_BACKUP_UNAVAILABLE",
  "backup-not-found": "DISK_BACKUP_UNAVAILABLE",
  "verify-failed": "DISK_VERIFY_FAILED",
  "tool-failed": "INTERNAL",
};

export class DiskError extends ReasonedError<DiskErrorReason> {
  constructor(reason: DiskErrorReason, message: string, options?: { cause?: unknown }) {
    super(reason, REASON_CODE, message, options);
    this.name = "DiskError";
  }
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new DiskError("not-root", "lifeline disk needs root: it attaches loop devices, FUSE exports and mounts file systems (run it with sudo)");
  }
}
