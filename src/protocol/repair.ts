import { z } from "zod";
import { Account, Sealed, Username } from "./accounts.js";
import { Id, Timestamp } from "./common.js";

/** `lifeline repair create`: snapshot, stop the machine, attach its disk for offline work. */
export const RepairCreateRequest = z.object({ snapshot: z.boolean().default(true) });
export const RepairSession = z.object({ machineName: z.string(), mountPath: z.string(), snapshotName: z.string().nullable() });
export type RepairSession = z.infer<typeof RepairSession>;

/** A password for an offline reset, sealed to the server's key (the server writes the hash). */
export const OfflineResetBinding = z.object({ purpose: z.literal("offline-reset"), machineId: Id, user: Username, expiresAt: Timestamp, nonce: Id });
export const RepairRunRequest = z.discriminatedUnion("action", [
  z.object({ action: z.literal("reset-password"), user: Username, sealed: Sealed, binding: OfflineResetBinding }),
  z.object({ action: z.literal("clear-flag"), user: Username }),
]);
export type RepairRunRequest = z.infer<typeof RepairRunRequest>;
export const RepairRunResult = z.object({
  before: Account,
  /** As the disk says now; with pendingUntilBoot, as it says until the next boot. */
  after: Account,
  os: z.enum(["linux", "windows"]),
  method: z.enum(["shadow", "sam", "startup-script"]),
  /** True when the change happens at the next boot (the Windows startup script). */
  pendingUntilBoot: z.boolean(),
  summary: z.string(),
});
export const RepairRestoreResult = z.object({ machineName: z.string(), started: z.boolean() });
