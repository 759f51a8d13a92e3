import { z } from "zod";
import { Id, Labels, MachineFacts, MachineName, Timestamp } from "./common.js";

export const MachineStatus = z.enum(["Ready", "NotReady"]);
export type MachineStatus = z.infer<typeof MachineStatus>;
/** Why a machine is NotReady. `never-connected`: enrolled but no session yet. */
export const NotReadyReason = z.enum(["disconnected", "heartbeat-timeout", "version-mismatch", "never-connected"]);
export type NotReadyReason = z.infer<typeof NotReadyReason>;

/**
 * Where a machine lives for its hypervisor-side driver (snapshots, power, offline disk), kept
 * with the machine so the server finds it again after a restart. Versioned: a driver reads
 * only versions it knows; `ref` is driver-specific (lab: { lab, host }).
 */
export const DriverHandle = z.object({
  driver: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, "driver names are lowercase letters, digits and -"),
  version: z.literal(1),
  ref: z.record(z.string().regex(/^[a-zA-Z][a-zA-Z0-9_-]{0,31}$/), z.string().max(4096)),
});
export type DriverHandle = z.infer<typeof DriverHandle>;

export const Machine = z.object({
  id: Id,
  name: MachineName,
  status: MachineStatus,
  reason: NotReadyReason.nullable(),
  statusSince: Timestamp,
  lastSeenAt: Timestamp.nullable(),
  enrolledAt: Timestamp,
  agentVersion: z.string().max(64).nullable(),
  protocolVersion: z.number().int().nullable(),
  facts: MachineFacts.nullable(),
  labels: Labels,
  signPublicKey: z.string(),
  sealPublicKey: z.string(),
  driver: DriverHandle.nullable(),
});
export type Machine = z.infer<typeof Machine>;

export const MachineList = z.object({ machines: z.array(Machine) });
export const MachineNameParams = z.object({ name: MachineName });
export const SetLabelsRequest = z.object({ set: Labels.default({}), remove: z.array(z.string().max(64)).max(32).default([]) });
export type SetLabelsRequest = z.infer<typeof SetLabelsRequest>;
export const SetDriverRequest = z.object({ handle: DriverHandle.nullable() });

export const SnapshotNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "snapshot names are 1-63 letters, digits, . _ - (not starting with . _ -)");

/** A disk snapshot, as drivers produce it and the API shows it. */
export const Snapshot = z.object({
  name: SnapshotNameSchema,
  createdAt: z.number().int(),
  /** Apparent size of the disk image in bytes. */
  sizeBytes: z.number().int().nonnegative(),
  /**
   * sha256 of the disk image's content, "sha256:<hex>". null while it is still being computed:
   * hashing is O(disk size), so create() returns without it (create stays O(1)) and the driver
   * hashes the immutable snapshot in the background; list() shows it once known, and revert()
   * always has it before it compares the reverted disk against it.
   */
  checksum: z.string().regex(/^sha256:[0-9a-f]{64}$/).nullable(),
  /** How consistency was obtained: filesystem frozen, machine paused, or machine stopped. */
  consistency: z.enum(["frozen", "paused", "stopped"]),
});
export type Snapshot = z.infer<typeof Snapshot>;
export const SnapshotList = z.object({ snapshots: z.array(Snapshot) });
