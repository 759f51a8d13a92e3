import { z } from "zod";
import { Id, Labels, MachineFacts, MachineName, Timestamp } from "./common.js";

export const MachineStatus = z.enum(["Ready", "NotReady"]);
export type MachineStatus = z.infer<typeof MachineStatus>;
/** Why a machine is NotReady. `never-connected`: enrolled but no session yet. */
export const NotReadyReason = z.enum(["disconnected", "heartbeat-timeout", "version-mismatch", "never-connected"]);
export type NotReadyReason = z.infer<typeof NotReadyReason>;

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
});
export type Machine = z.infer<typeof Machine>;

export const MachineList = z.object({ machines: z.array(Machine) });
export const MachineNameParams = z.object({ name: MachineName });
export const SetLabelsRequest = z.object({ set: Labels.default({}), remove: z.array(z.string().max(64)).max(32).default([]) });
export type SetLabelsRequest = z.infer<typeof SetLabelsRequest>;
