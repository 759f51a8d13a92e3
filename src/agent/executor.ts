import type { KeyObject } from "node:crypto";
import { open, type SealedBox } from "../crypto/index.js";
import type { Logger } from "pino";
import { OpSpec, type AgentMessage, type OpError, type OpResult, type SignedEnvelope, type Stream } from "../protocol/index.js";
import type { OpJournal } from "./journal.js";
import { processStartTime, signalGroup } from "./process-group.js";
import { OP_HANDLERS } from "./ops/index.js";
import { resultWithoutOutput } from "./results.js";
import { expiryProblem, verifyCancel, verifyOp } from "./verify.js";

/** What an op handler gets: where to send output, how to learn of a cancel. */
export interface OpContext {
  opId: string;
  machineId: string;
  expiresAt: number;
  stateDir: string;
  /** Opens a secret sealed to this agent's X25519 key for the given associated data. */
  openSecret(box: SealedBox, associatedData: Uint8Array): Buffer | undefined;
  output(stream: Stream, data: Buffer): void;
  started(pid: number, pidStart: string | null): void;
  onCancel(listener: () => void): void;
}

/** Sends a message to the server if a session is up; false when it is not (the op goes on). */
export type Outbox = (message: AgentMessage) => boolean;

interface InFlight {
  startedAt: number;
  /** Everything sent so far, replayed when the op is redelivered after a reconnect. */
  sent: AgentMessage[];
  cancel: () => void;
}

/**
 * Verifies and runs ops, at most once each. The journal entry is written before an op starts,
 * so a redelivered, replayed or crash-interrupted op is answered from the journal, never rerun.
 */
// What a finished op sent is kept this long (and at most this much in all), to replay it when
// the op is redelivered after a disconnect.
const RECENT_KEEP_MS = 15 * 60_000;
const RECENT_MAX_BYTES = 32 * 1024 * 1024;
const PRUNE_EVERY_MS = 3600_000;

export class OpExecutor {
  private readonly inFlight = new Map<string, InFlight>();
  private readonly recent = new Map<string, { sent: AgentMessage[]; bytes: number; at: number }>();
  private recentBytes = 0;
  private readonly pruneTimer: NodeJS.Timeout;
  private outbox: Outbox = () => false;

  constructor(
    private readonly journal: OpJournal,
    private readonly serverKey: KeyObject,
    private readonly machineId: string,
    private readonly stateDir: string,
    private readonly log: Logger,
    private readonly sealKey: { privateKey: KeyObject; publicKey: string },
  ) {
    this.pruneTimer = setInterval(() => this.journal.prune(Date.now()), PRUNE_EVERY_MS);
    this.pruneTimer.unref();
  }

  stop(): void {
    clearInterval(this.pruneTimer);
  }

  private remember(opId: string, sent: AgentMessage[]): void {
    const bytes = sent.reduce((n, m) => n + (m.type === "op.output" ? m.data.length : 64), 0);
    this.recent.set(opId, { sent, bytes, at: Date.now() });
    this.recentBytes += bytes;
    const cutoff = Date.now() - RECENT_KEEP_MS;
    for (const [id, item] of this.recent) {
      if (item.at >= cutoff && this.recentBytes <= RECENT_MAX_BYTES) break;
      this.recent.delete(id);
      this.recentBytes -= item.bytes;
    }
  }

  get running(): number {
    return this.inFlight.size;
  }

  setOutbox(outbox: Outbox): void {
    this.outbox = outbox;
  }

  /**
   * After a crash or kill of the agent: ops that were running have no result. Stop what is left
   * of them and record that they were interrupted; they are not run again.
   */
  recoverInterrupted(): void {
    for (const entry of this.journal.entries()) {
      if (entry.state !== "running") continue;
      if (entry.pid !== null && entry.pidStart !== null && processStartTime(entry.pid) === entry.pidStart) {
        signalGroup(entry.pid, "SIGKILL");
      }
      const result = resultWithoutOutput(entry.receivedAt, {
        error: { code: "AGENT_RESTARTED", message: "The agent restarted while the op was running; it was stopped and not run again" },
      });
      this.journal.put({ ...entry, state: "finished", result });
      this.log.warn({ opId: entry.id }, "op interrupted by an agent restart; recorded as failed");
    }
    this.journal.prune(Date.now());
  }

  handleOp(envelope: SignedEnvelope): void {
    const verified = verifyOp(envelope, this.serverKey, this.machineId);
    if (!verified.ok) return this.reject(verified.opId, verified.error);
    const op = verified.payload;

    const live = this.inFlight.get(op.id);
    if (live) {
      for (const message of live.sent) this.outbox(message);
      return;
    }
    const seen = this.journal.get(op.id);
    if (seen) {
      // Output sent while the session was down is replayed (the server ignores what it has).
      for (const message of this.recent.get(op.id)?.sent ?? []) this.outbox(message);
      if (seen.result) this.outbox({ type: "op.finished", opId: op.id, result: seen.result });
      else this.outbox({ type: "op.rejected", opId: op.id, error: { code: "AGENT_STATE_INVALID", message: "The agent's record of this op is damaged; it was not run again" } });
      return;
    }
    const expired = expiryProblem(op, Date.now());
    if (expired) return this.reject(op.id, expired);
    const spec = OpSpec.safeParse({ kind: op.kind, args: op.args });
    if (!spec.success) return this.reject(op.id, { code: "VALIDATION_FAILED", message: `Unsupported op kind "${op.kind}" or bad arguments` });

    const entry = { id: op.id, expiresAt: op.expiresAt, receivedAt: Date.now(), state: "running" as const, pid: null, pidStart: null, result: null };
    this.journal.put(entry);
    const cancelListeners: (() => void)[] = [];
    const flight: InFlight = { startedAt: entry.receivedAt, sent: [], cancel: () => cancelListeners.forEach((l) => l()) };
    this.inFlight.set(op.id, flight);
    let seq = 0;
    const send = (message: AgentMessage) => {
      flight.sent.push(message);
      this.outbox(message);
    };
    send({ type: "op.started", opId: op.id, startedAt: entry.receivedAt });
    const ctx: OpContext = {
      opId: op.id,
      machineId: this.machineId,
      expiresAt: op.expiresAt,
      stateDir: this.stateDir,
      openSecret: (box, aad) => open(box, this.sealKey.privateKey, this.sealKey.publicKey, aad),
      output: (stream, data) => send({ type: "op.output", opId: op.id, stream, seq: seq++, data: data.toString("base64url") }),
      started: (pid, pidStart) => this.journal.put({ ...entry, pid, pidStart }, false),
      onCancel: (listener) => cancelListeners.push(listener),
    };
    this.log.info({ opId: op.id, kind: op.kind }, "op started");
    (OP_HANDLERS[spec.data.kind] as (args: unknown, ctx: OpContext) => Promise<OpResult>)(spec.data.args, ctx)
      .catch((err: Error) => resultWithoutOutput(entry.receivedAt, { error: { code: "INTERNAL", message: err.message } }))
      .then((result) => {
        this.journal.put({ ...entry, state: "finished", result }, false);
        this.inFlight.delete(op.id);
        this.remember(op.id, flight.sent);
        this.log.info({ opId: op.id, state: result.state, exitCode: result.exitCode }, "op finished");
        this.outbox({ type: "op.finished", opId: op.id, result });
      });
  }

  handleCancel(envelope: SignedEnvelope): void {
    const verified = verifyCancel(envelope, this.serverKey, this.machineId);
    const problem = verified.ok ? expiryProblem(verified.payload, Date.now()) : verified.error;
    if (!verified.ok || problem) {
      this.log.warn({ code: problem?.code }, `cancel refused: ${problem?.message}`);
      return;
    }
    const flight = this.inFlight.get(verified.payload.opId);
    if (flight) flight.cancel();
  }

  private reject(opId: string | undefined, error: OpError): void {
    this.log.warn({ opId, code: error.code }, `op refused: ${error.message}`);
    // A forged copy of an op we know must not end the real one on the server.
    if (opId && !this.inFlight.has(opId) && !this.journal.get(opId)) this.outbox({ type: "op.rejected", opId, error });
  }
}
