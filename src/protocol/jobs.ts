import { z } from "zod";
import { Sealed, Username, VerifyOutcome, VerifyRequest } from "./accounts.js";
import { Id, MachineName, Realm, Timestamp } from "./common.js";

export const JobState = z.enum(["running", "succeeded", "failed", "rolling-back", "rolled-back", "stopped"]);
export type JobState = z.infer<typeof JobState>;
export const isJobActive = (s: JobState) => s === "running" || s === "rolling-back";

export const StepState = z.enum(["pending", "running", "done", "skipped", "failed"]);
export const FIX_LOGON_STEPS = ["check-agent", "diagnose", "snapshot", "fix", "verify"] as const;
/** With no agent: the disk is repaired from outside the machine instead of the online fix. */
export const OFFLINE_FIX_STEPS = ["stop", "attach", "edit", "repair-agent", "detach", "start"] as const;
export const StepName = z.enum([...FIX_LOGON_STEPS, ...OFFLINE_FIX_STEPS, "rollback"]);
export type StepName = z.infer<typeof StepName>;

export const JobStep = z.object({
  name: StepName,
  state: StepState,
  startedAt: Timestamp.nullable(),
  finishedAt: Timestamp.nullable(),
  /** One line for people: what the step found or did. */
  detail: z.string().max(2000).nullable(),
});
export type JobStep = z.infer<typeof JobStep>;

/** What fix-logon was asked to do. The password exists here only sealed (see accounts.ts). */
export const FixLogonParams = z.object({
  user: Username,
  mode: z.enum(["new-password", "keep-password"]),
  snapshot: z.boolean(),
  rollbackOnFailure: z.boolean(),
  /** Offline path: also re-enable the Lifeline agent on the disk. */
  repairAgent: z.boolean().default(false),
  /** new-password: sealed to the agent, bound to fixOpId; the op id is chosen by the client. */
  fixOpId: Id,
  fixExpiresAt: Timestamp,
  sealed: Sealed.optional(),
  /** The password for the login check, sealed to the server's key (keep-password: the current one). */
  verify: VerifyRequest.optional(),
  /** A domain account: the fix goes to this realm's DC through the domain's agent. */
  realm: Realm.optional(),
});
export type FixLogonParams = z.infer<typeof FixLogonParams>;

export const Job = z.object({
  id: Id,
  kind: z.literal("fix-logon"),
  machineId: Id,
  machineName: MachineName,
  user: Username,
  /** Set when the account is a domain account. */
  realm: Realm.optional(),
  state: JobState,
  steps: z.array(JobStep),
  createdAt: Timestamp,
  createdBy: z.string(),
  updatedAt: Timestamp,
  snapshotName: z.string().nullable(),
  /** online (through the agent) or offline (disk repair), decided by the first step. */
  path: z.enum(["online", "offline"]).nullable(),
  verifyOutcome: VerifyOutcome.nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});
export type Job = z.infer<typeof Job>;

export const FixLogonRequest = z.object({
  user: Username,
  keepPassword: z.boolean().default(false),
  noSnapshot: z.boolean().default(false),
  rollbackOnFailure: z.boolean().default(false),
  repairAgent: z.boolean().default(false),
  dryRun: z.boolean().default(false),
  fixOpId: Id,
  fixExpiresAt: Timestamp,
  sealed: Sealed.optional(),
  verify: FixLogonParams.shape.verify,
  realm: Realm.optional(),
});
export type FixLogonRequest = z.input<typeof FixLogonRequest>;

export const FixLogonPlan = z.object({ dryRun: z.literal(true), steps: z.array(z.object({ name: StepName, action: z.string() })) });
export const JobList = z.object({ jobs: z.array(Job) });
export const JobQuery = z.object({ machine: MachineName.optional(), limit: z.coerce.number().int().min(1).max(1000).default(50) });
