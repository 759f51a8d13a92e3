import type { DomainInfo, DriverHandle, FixLogonParams, Job, JobState } from "../protocol/index.js";
import type { AuditEntry, Labels, MachineFacts, NotReadyReason, Op, OpError, OpState, Role, Stream, TokenInfo, MachineStatus } from "../protocol/index.js";

/**
 * Everything the server keeps. Implementations: sqlite.ts (default), PostgreSQL later; nothing
 * outside src/store/ knows which one runs. Methods are async so a networked database fits.
 */
export interface TokenRecord extends TokenInfo {
  hash: string;
}

export interface MachineRecord {
  id: string;
  name: string;
  status: MachineStatus;
  reason: NotReadyReason | null;
  statusSince: number;
  lastSeenAt: number | null;
  enrolledAt: number;
  agentVersion: string | null;
  protocolVersion: number | null;
  facts: MachineFacts | null;
  labels: Labels;
  signPublicKey: string;
  sealPublicKey: string;
  driver: DriverHandle | null;
}

export interface JobRecord extends Job {
  params: FixLogonParams;
}

export type JobPatch = Partial<Pick<JobRecord, "state" | "steps" | "snapshotName" | "verifyOutcome" | "error" | "path" | "params">> & { updatedAt: number };

export interface OpRecord extends Op {
  /** The signed envelope sent to the agent (not secret; re-sent after a reconnect). */
  envelope: { payload: string; signature: string };
}

export type EnrollConsumeResult = { ok: true; token: TokenRecord } | { ok: false; why: "unknown" | "expired" | "used" | "revoked" };

export interface OpPatch {
  state?: OpState;
  sentAt?: number;
  startedAt?: number;
  finishedAt?: number;
  cancelRequested?: boolean;
  exitCode?: number | null;
  signal?: string | null;
  stdoutBytes?: number;
  stderrBytes?: number;
  stdoutTruncated?: boolean;
  stderrTruncated?: boolean;
  error?: OpError | null;
  data?: unknown;
}

export interface OutputChunk {
  seq: number;
  stream: Stream;
  data: Buffer;
}

export interface AuditInput {
  at: number;
  actor: string;
  action: string;
  target: string | null;
  result: string;
  detail: string | null;
}

/** A configured AD domain: what the server knows (never the bind password). */
export interface DomainRecord {
  realm: string;
  viaMachineId: string;
  bindUser: string;
  servers: string[];
  caPem: string | null;
  info: DomainInfo;
  createdAt: number;
  createdBy: string;
}

export interface Store {
  close(): Promise<void>;

  insertToken(token: TokenRecord): Promise<void>;
  findApiTokenByHash(hash: string): Promise<TokenRecord | undefined>;
  listTokens(): Promise<TokenRecord[]>;
  getToken(id: string): Promise<TokenRecord | undefined>;
  revokeToken(id: string, at: number): Promise<boolean>;
  /** Atomically marks a one-time enrollment token used; says why when it cannot. */
  consumeEnrollToken(hash: string, now: number): Promise<EnrollConsumeResult>;
  countTokens(kind: "api" | "enroll"): Promise<number>;

  insertMachine(machine: MachineRecord): Promise<void>;
  getMachineByName(name: string): Promise<MachineRecord | undefined>;
  getMachineById(id: string): Promise<MachineRecord | undefined>;
  listMachines(): Promise<MachineRecord[]>;
  updateMachine(id: string, patch: Partial<Omit<MachineRecord, "id" | "name" | "enrolledAt">>): Promise<void>;
  /** Marks every Ready machine NotReady(reason): at server start, when no socket is held. */
  markAllNotReady(reason: NotReadyReason, at: number): Promise<void>;
  deleteMachine(id: string): Promise<boolean>;

  insertOp(op: OpRecord): Promise<void>;
  getOp(id: string): Promise<OpRecord | undefined>;
  listOps(filter: { machineId?: string; state?: OpState; runId?: string; limit: number }): Promise<OpRecord[]>;
  /** Applies the patch only if the op is in one of `from` states; returns whether it did. */
  transitionOp(id: string, from: readonly OpState[], patch: OpPatch): Promise<boolean>;
  updateOp(id: string, patch: OpPatch): Promise<void>;
  /** Non-terminal ops of a machine, oldest first: what to (re)deliver on connect. */
  pendingOps(machineId: string): Promise<OpRecord[]>;
  /** Non-terminal ops whose expiry (plus grace for running ones) has passed. */
  overdueOps(now: number): Promise<OpRecord[]>;
  countOpsByState(): Promise<Record<string, number>>;

  /** Stores a chunk once (a redelivered seq is ignored); returns false if it was a duplicate. */
  appendOutput(opId: string, chunk: OutputChunk): Promise<boolean>;
  readOutput(opId: string): Promise<OutputChunk[]>;

  /** Inserts the job unless the machine has an active one (then returns that one's id). */
  insertJobUnlessActive(job: JobRecord): Promise<{ inserted: true } | { inserted: false; activeJobId: string }>;
  getJob(id: string): Promise<JobRecord | undefined>;
  listJobs(filter: { machineId?: string; limit: number }): Promise<JobRecord[]>;
  updateJob(id: string, patch: JobPatch): Promise<void>;
  jobsInStates(states: readonly JobState[]): Promise<JobRecord[]>;

  /** Records a one-time nonce; false if it was already used (and not yet expired). */
  useNonce(nonce: string, expiresAt: number, now: number): Promise<boolean>;

  /** Adds or replaces the domain of that realm. */
  putDomain(domain: DomainRecord): Promise<void>;
  getDomain(realm: string): Promise<DomainRecord | undefined>;
  listDomains(): Promise<DomainRecord[]>;
  deleteDomain(realm: string): Promise<boolean>;

  appendAudit(entry: AuditInput): Promise<void>;
  listAudit(limit: number): Promise<AuditEntry[]>;
}

export type { Role };
