/**
 * The hypervisor side of Lifeline: what the server can do to a machine without its agent.
 * A narrow interface (after Nomad's DriverPlugin): snapshots and power are required; disk
 * attach/detach (offline repair) is an optional capability. Every driver passes the shared
 * suite in test/integration/drivers.test.ts.
 */

// The shapes that cross the API (handle, snapshot) live in protocol/, shared with CLI and store.
export { DriverHandle, Snapshot as SnapshotInfo, SnapshotNameSchema as SnapshotName } from "../protocol/index.js";
import type { DriverHandle, Snapshot as SnapshotInfo } from "../protocol/index.js";

export type PowerState = "running" | "stopped";

export interface SnapshotOps {
  /** O(1) in disk size (reflink or qcow2 overlay); crash-consistent. Refuses a name in use. */
  create(handle: DriverHandle, name: string): Promise<SnapshotInfo>;
  list(handle: DriverHandle): Promise<SnapshotInfo[]>;
  /**
   * Makes the disk byte-for-byte the snapshot again (checksum compared). Refuses while the
   * machine runs unless `stopIfRunning`, in which case it stops it, reverts and starts it.
   */
  revert(handle: DriverHandle, name: string, opts: { stopIfRunning: boolean }): Promise<SnapshotInfo>;
  delete(handle: DriverHandle, name: string): Promise<void>;
}

export interface PowerOps {
  status(handle: DriverHandle): Promise<PowerState>;
  stop(handle: DriverHandle): Promise<void>;
  start(handle: DriverHandle): Promise<void>;
}

/** Optional capability: the machine's disk made available for offline repair (issue: offline repair). */
export interface DiskOps {
  /** Mounts the (stopped) machine's root filesystem somewhere the caller can edit; returns the path. */
  attach(handle: DriverHandle): Promise<{ mountPath: string }>;
  detach(handle: DriverHandle): Promise<void>;
}

/** Where the machine's sshd answers from the server, when the driver knows better than the machine's own addresses. */
export interface LoginEndpoint {
  host: string;
  port: number;
}

export interface Driver {
  readonly name: string;
  /**
   * Optional: where a login to the (running) machine is verified, e.g. a VM on a private NAT
   * network reached through a loopback port forward. Undefined: use the addresses its agent reported.
   */
  loginEndpoint?(handle: DriverHandle): Promise<LoginEndpoint | undefined>;
  /** Throws DRIVER_HANDLE_INVALID (a LifelineError) when the ref is not one of this driver's. */
  validate(handle: DriverHandle): void;
  readonly snapshots: SnapshotOps;
  readonly power: PowerOps;
  readonly disk?: DiskOps;
}
