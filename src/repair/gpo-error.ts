import { ReasonedError, type ErrorCode } from "../protocol/index.js";

/** Why a Group Policy edit was refused; `reason` is finer than the registry code it maps to. */
export type GpoErrorReason = "bad-input" | "bad-password" | "not-windows" | "unsafe-path" | "ini-invalid" | "unsafe-mount";
const REASON_CODE: Record<GpoErrorReason, ErrorCode> = {
  "bad-input": "VALIDATION_FAILED",
  "bad-password": "PASSWORD_POLICY",
  "not-windows": "DISK_INVALID",
  "unsafe-path": "DISK_INVALID",
  "ini-invalid": "DISK_INVALID",
  // Lifeline mounts the disk itself, so a mount without ACL mapping is our own bug.
  "unsafe-mount": "DISK_MOUNT_UNSAFE",
};
export class GpoError extends ReasonedError<GpoErrorReason> {
  constructor(reason: GpoErrorReason, message: string, options?: { cause?: unknown }) {
    super(reason, REASON_CODE, message, options);
    this.name = "GpoError";
  }
}
