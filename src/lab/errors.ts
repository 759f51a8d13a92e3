/**
 * The lab's one error type. Callers branch on `code`, never on message text; the CLI maps
 * each code to one line and an exit code.
 */
export type LabErrorCode =
  | "LAB_NOT_ROOT" // the lab changes namespaces, mounts and loop devices: root only
  | "LAB_KERNEL_FEATURE_MISSING" // netns, pid ns, loop devices or xfs not available
  | "LAB_TOOL_MISSING" // a system program (debootstrap, mkfs.xfs, ...) is not installed
  | "LAB_INVALID_ARGUMENT" // a name, subnet or option does not match its grammar
  | "LAB_NOT_UP" // the operation needs a lab that is up
  | "LAB_HOST_NOT_FOUND" // no host of that name in this lab
  | "LAB_HOST_NOT_RUNNING" // exec on a stopped host
  | "LAB_HOST_BOOT_FAILED" // a host did not answer on port 22 in time
  | "LAB_SUBNET_IN_USE" // the machine already routes the lab's subnet elsewhere
  | "LAB_BUSY" // another process holds the lab's lock
  | "LAB_IMAGE_BUILD_FAILED"
  | "LAB_HOST_RUNNING" // refused while the host runs (revert without stopIfRunning, disk attach)
  | "LAB_DISK_ATTACHED" // the host's disk is attached for offline repair: detach it first
  | "LAB_SNAPSHOT_NOT_FOUND"
  | "LAB_SNAPSHOT_EXISTS"
  | "LAB_SNAPSHOT_CHECKSUM_MISMATCH" // a reverted disk does not hash to its snapshot's checksum
  | "LAB_COMMAND_FAILED"; // a system command failed; details in the message

export class LabError extends Error {
  override readonly name = "LabError";
  constructor(
    readonly code: LabErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isLabError(err: unknown, code?: LabErrorCode): err is LabError {
  return err instanceof LabError && (code === undefined || err.code === code);
}
