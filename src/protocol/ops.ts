import { z } from "zod";
import { AccountsClearFlagArgs, AccountsExpireArgs, AccountsInspectArgs, AccountsListArgs, AccountsResetArgs, AccountsUnlockArgs } from "./accounts.js";
import { AccountsVerifyBindArgs, DomainConfigureArgs, DomainForgetArgs } from "./domain.js";
import { Id, Labels, MachineName, Timestamp } from "./common.js";

export const MAX_SCRIPT_BYTES = 256 * 1024;
export const DEFAULT_OUTPUT_CAP_BYTES = 1024 * 1024;
export const MAX_OUTPUT_CAP_BYTES = 16 * 1024 * 1024;
export const DEFAULT_TIMEOUT_SECONDS = 600;
export const MAX_TIMEOUT_SECONDS = 24 * 3600;
/** How long a queued op may wait for its agent before it expires. */
export const DEFAULT_DELIVERY_SECONDS = 300;
export const MAX_DELIVERY_SECONDS = 24 * 3600;

export const OpState = z.enum(["queued", "sent", "running", "succeeded", "failed", "timed-out", "canceled", "expired"]);
export type OpState = z.infer<typeof OpState>;
export const TERMINAL_OP_STATES: readonly OpState[] = ["succeeded", "failed", "timed-out", "canceled", "expired"];
export const isTerminal = (s: OpState): boolean => TERMINAL_OP_STATES.includes(s);

export const Stream = z.enum(["stdout", "stderr"]);
export type Stream = z.infer<typeof Stream>;

export const Script = z
  .string()
  .min(1, "script is empty")
  .refine((s) => new TextEncoder().encode(s).length <= MAX_SCRIPT_BYTES, {
    message: `script is larger than the limit of ${MAX_SCRIPT_BYTES} bytes (pass data to the machine another way)`,
    params: { lifelineCode: "SCRIPT_TOO_LARGE" },
  });

/** sh: /bin/sh on Linux agents; powershell and cmd: Windows agents. */
export const Interpreter = z.enum(["sh", "powershell", "cmd"]);
export type Interpreter = z.infer<typeof Interpreter>;

export const RunArgs = z.object({
  interpreter: Interpreter,
  script: Script,
  timeoutMs: z.number().int().positive().max(MAX_TIMEOUT_SECONDS * 1000),
  outputCapBytes: z.number().int().positive().max(MAX_OUTPUT_CAP_BYTES),
});
export type RunArgs = z.infer<typeof RunArgs>;

/** What the server asks an agent to do. One entry per op kind; later issues add kinds. */
export const OpSpec = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("run"), args: RunArgs }),
  z.object({ kind: z.literal("accounts.list"), args: AccountsListArgs }),
  z.object({ kind: z.literal("accounts.inspect"), args: AccountsInspectArgs }),
  z.object({ kind: z.literal("accounts.expire"), args: AccountsExpireArgs }),
  z.object({ kind: z.literal("accounts.clear-flag"), args: AccountsClearFlagArgs }),
  z.object({ kind: z.literal("accounts.reset-password"), args: AccountsResetArgs }),
  z.object({ kind: z.literal("accounts.unlock"), args: AccountsUnlockArgs }),
  z.object({ kind: z.literal("accounts.verify-bind"), args: AccountsVerifyBindArgs }),
  z.object({ kind: z.literal("domain.configure"), args: DomainConfigureArgs }),
  z.object({ kind: z.literal("domain.forget"), args: DomainForgetArgs }),
]);
export type OpSpec = z.infer<typeof OpSpec>;
export type OpKind = OpSpec["kind"];

export const OpError = z.object({ code: z.string().max(64), message: z.string().max(2000) });
export type OpError = z.infer<typeof OpError>;

/** The end of an op as the agent reports it (and remembers it, for redelivery). */
export const OpResult = z.object({
  state: z.enum(["succeeded", "failed", "timed-out", "canceled"]),
  exitCode: z.number().int().nullable(),
  signal: z.string().max(16).nullable(),
  startedAt: Timestamp.nullable(),
  finishedAt: Timestamp,
  stdoutBytes: z.number().int().nonnegative(),
  stderrBytes: z.number().int().nonnegative(),
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
  error: OpError.nullable(),
  /** Structured result of ops that return data (accounts); null for `run`. */
  data: z.unknown().optional(),
});
export type OpResult = z.infer<typeof OpResult>;

export const Op = z.object({
  id: Id,
  runId: Id,
  machineId: Id,
  machineName: MachineName,
  kind: z.string(),
  state: OpState,
  createdAt: Timestamp,
  createdBy: z.string(),
  expiresAt: Timestamp,
  sentAt: Timestamp.nullable(),
  startedAt: Timestamp.nullable(),
  finishedAt: Timestamp.nullable(),
  cancelRequested: z.boolean(),
  timeoutMs: z.number().int(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  stdoutBytes: z.number().int(),
  stderrBytes: z.number().int(),
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
  error: OpError.nullable(),
  data: z.unknown().optional(),
});
export type Op = z.infer<typeof Op>;

export const Targets = z
  .object({
    machines: z.array(MachineName).max(10_000).optional(),
    all: z.boolean().optional(),
    labels: Labels.optional(),
  })
  .refine((t) => [t.machines !== undefined && t.machines.length > 0, t.all === true, t.labels !== undefined].filter(Boolean).length === 1, {
    message: "give exactly one of: machines, all, labels",
  });
export type Targets = z.infer<typeof Targets>;

export const CreateRunRequest = z.object({
  targets: Targets,
  script: Script,
  interpreter: Interpreter.default("sh"),
  timeoutSeconds: z.number().positive().max(MAX_TIMEOUT_SECONDS).default(DEFAULT_TIMEOUT_SECONDS),
  outputCapBytes: z.number().int().positive().max(MAX_OUTPUT_CAP_BYTES).default(DEFAULT_OUTPUT_CAP_BYTES),
  /** fail: a NotReady target gets no op (reported as skipped). queue: it runs when the agent returns. */
  ifNotReady: z.enum(["fail", "queue"]).default("fail"),
  deliverWithinSeconds: z.number().int().positive().max(MAX_DELIVERY_SECONDS).default(DEFAULT_DELIVERY_SECONDS),
});
export type CreateRunRequest = z.input<typeof CreateRunRequest>;

export const Skipped = z.object({ machineName: MachineName, reason: z.string() });
export const Run = z.object({ id: Id, ops: z.array(Op), skipped: z.array(Skipped) });
export type Run = z.infer<typeof Run>;

export const OpList = z.object({ ops: z.array(Op) });
export const OpQuery = z.object({
  machine: MachineName.optional(),
  state: OpState.optional(),
  run: Id.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
});
export const IdParams = z.object({ id: Id });

/** One line of the NDJSON event stream of a run (`GET /v1/runs/:id/events`). */
export const RunEvent = z.discriminatedUnion("type", [
  z.object({ type: z.literal("output"), opId: Id, stream: Stream, seq: z.number().int(), data: z.string() /* base64 */ }),
  z.object({ type: z.literal("state"), op: Op }),
  z.object({ type: z.literal("end") }),
]);
export type RunEvent = z.infer<typeof RunEvent>;
export const RunEventsQuery = z.object({ op: Id.optional() });
