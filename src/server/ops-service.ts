import { createHash } from "node:crypto";
import type { FastifyBaseLogger } from "fastify";
import { newId, signJson } from "../crypto/index.js";
import {
  LifelineError,
  isErrorCode,
  isTerminal,
  type CancelPayload,
  type CreateRunRequest,
  type Op,
  type OpPayload,
  type OpResult,
  type OpSpec,
  type Run,
  type Stream,
  CreateRunRequest as CreateRunRequestSchema,
  OpError,
} from "../protocol/index.js";
import type { MachineRecord, OpPatch, OpRecord, Store } from "../store/index.js";
import type { AuditLog } from "./audit.js";
import type { Principal } from "./auth.js";
import type { RunEvents } from "./events.js";
import type { Metrics } from "./metrics.js";
import type { ServerSigningKey } from "./keys.js";

/** What the op service needs from the agent gateway: a way to reach a connected agent. */
export interface AgentLink {
  isConnected(machineId: string): boolean;
  send(machineId: string, message: { type: "op"; op: OpRecord["envelope"] } | { type: "cancel"; cancel: OpRecord["envelope"] }): boolean;
}

const CANCEL_VALIDITY_MS = 10 * 60_000;
/** Account ops are quick; this bounds how long an API call waits for one. */
export const DATA_OP_TIMEOUT_MS = 60_000;
const DATA_OP_DELIVERY_MS = 30_000;
// The server keeps at most this much more than the op's cap per stream: an agent that ignores
// its cap cannot fill the store.
const OUTPUT_SLACK_BYTES = 64 * 1024;

export const toApiOp = ({ envelope: _e, ...op }: OpRecord): Op => op;

/** A finished data op's result, or its error as a LifelineError (agent codes are in the registry). */
export function opData(op: OpRecord): unknown {
  if (op.state === "succeeded") return op.data;
  const code = op.error && isErrorCode(op.error.code) ? op.error.code : "ACCOUNT_CHANGE_FAILED";
  throw new LifelineError(code, op.error?.message ?? `The op ended ${op.state}`);
}

/**
 * The life of an op on the server: created and signed, delivered (again after a reconnect),
 * started, streamed, finished, canceled, or expired. Every transition is a conditional update
 * of the store, so a late or repeated agent message cannot move a finished op.
 */
export class OpsService {
  private link: AgentLink | undefined;
  private readonly receivedBytes = new Map<string, { stdout: number; stderr: number; cap: number }>();

  constructor(
    private readonly store: Store,
    private readonly key: ServerSigningKey,
    private readonly events: RunEvents,
    private readonly audit: AuditLog,
    private readonly metrics: Metrics,
    private readonly log: FastifyBaseLogger,
  ) {}

  attach(link: AgentLink): void {
    this.link = link;
  }

  async createRun(principal: Principal, input: CreateRunRequest): Promise<Run> {
    const request = CreateRunRequestSchema.parse(input);
    const machines = await this.resolveTargets(request.targets);
    const runId = newId();
    const now = Date.now();
    const ops: OpRecord[] = [];
    const skipped: Run["skipped"] = [];
    const spec: OpSpec = {
      kind: "run",
      args: {
        interpreter: request.interpreter,
        script: request.script,
        timeoutMs: Math.round(request.timeoutSeconds * 1000),
        outputCapBytes: request.outputCapBytes,
      },
    };
    const single = request.targets.machines?.length === 1 ? machines[0] : undefined;
    if (single && request.ifNotReady === "fail" && !this.link?.isConnected(single.id)) throw notReady(single, "run a script");
    for (const machine of machines) {
      const connected = this.link?.isConnected(machine.id) ?? false;
      if (!connected && request.ifNotReady === "fail") {
        skipped.push({ machineName: machine.name, reason: `NotReady (${machine.reason ?? "disconnected"})` });
        continue;
      }
      const op = this.newOp(principal, runId, machine, spec, now, request.deliverWithinSeconds * 1000);
      await this.store.insertOp(op);
      ops.push(op);
    }
    const detail = `run=${runId} script sha256=${sha256(request.script)} bytes=${Buffer.byteLength(request.script)} timeout=${request.timeoutSeconds}s ops=${ops.length} skipped=${skipped.length}`;
    await this.audit.record(principal, "run.create", machines.map((m) => m.name).join(",").slice(0, 500), "accepted", detail);
    for (const op of ops) await this.deliver(op);
    const fresh = await Promise.all(ops.map(async (op) => toApiOp((await this.store.getOp(op.id)) ?? op)));
    return { id: runId, ops: fresh, skipped };
  }

  private newOp(principal: Principal, runId: string, machine: MachineRecord, spec: OpSpec, now: number, deliverWithinMs: number, opId?: string, expiresAt?: number): OpRecord {
    const id = opId ?? newId();
    const payload: OpPayload = { v: 1, type: "op", id, machineId: machine.id, kind: spec.kind, args: spec.args, issuedAt: now, expiresAt: expiresAt ?? now + deliverWithinMs };
    return {
      id,
      runId,
      machineId: machine.id,
      machineName: machine.name,
      kind: spec.kind,
      state: "queued",
      createdAt: now,
      createdBy: principal.label,
      expiresAt: payload.expiresAt,
      sentAt: null,
      startedAt: null,
      finishedAt: null,
      cancelRequested: false,
      timeoutMs: spec.kind === "run" ? spec.args.timeoutMs : DATA_OP_TIMEOUT_MS,
      exitCode: null,
      signal: null,
      stdoutBytes: 0,
      stderrBytes: 0,
      stdoutTruncated: false,
      stderrTruncated: false,
      error: null,
      envelope: signJson("op", payload, this.key.privateKey),
    };
  }

  private async resolveTargets(targets: CreateRunRequest["targets"]): Promise<MachineRecord[]> {
    if (targets.machines) {
      const unique = [...new Set(targets.machines)];
      const found = await Promise.all(unique.map((name) => this.store.getMachineByName(name)));
      const missing = unique.filter((_, i) => !found[i]);
      if (missing.length) throw new LifelineError("MACHINE_NOT_FOUND", `No machine named ${missing.map((n) => `"${n}"`).join(", ")}`);
      return found as MachineRecord[];
    }
    const all = await this.store.listMachines();
    if (targets.all) {
      if (!all.length) throw new LifelineError("NO_TARGETS", "No machines are enrolled");
      return all;
    }
    const wanted = Object.entries(targets.labels ?? {});
    const matching = all.filter((m) => wanted.every(([k, v]) => m.labels[k] === v));
    if (!matching.length) throw new LifelineError("NO_TARGETS", `No machine has labels ${wanted.map(([k, v]) => `${k}=${v}`).join(",")}`);
    return matching;
  }

  /**
   * One op on one Ready machine, waited for: the account actions. Refuses at once when the agent
   * is not connected (no queueing: a password reset should not fire hours later).
   */
  async runAndWait(principal: Principal, machine: MachineRecord, spec: OpSpec, opts: { opId?: string; expiresAt?: number } = {}): Promise<OpRecord> {
    if (!this.link?.isConnected(machine.id)) throw notReady(machine, OP_VERBS[spec.kind]);
    if (opts.opId && (await this.store.getOp(opts.opId))) throw new LifelineError("OP_REPLAYED", `Op id "${opts.opId}" was already used: a sealed secret works for one op only`);
    const now = Date.now();
    const op = this.newOp(principal, newId(), machine, spec, now, DATA_OP_DELIVERY_MS, opts.opId, opts.expiresAt);
    const ended = new Promise<void>((resolve) => {
      const unsubscribe = this.events.subscribe(op.runId, (event) => {
        if (event.type === "state" && isTerminal(event.op.state)) {
          unsubscribe();
          resolve();
        }
      });
      setTimeout(() => (unsubscribe(), resolve()), DATA_OP_TIMEOUT_MS).unref();
    });
    await this.store.insertOp(op);
    await this.deliver(op);
    await ended;
    const done = (await this.store.getOp(op.id))!;
    if (!isTerminal(done.state)) throw new LifelineError("OP_TIMED_OUT", `No answer from "${machine.name}" within ${DATA_OP_TIMEOUT_MS / 1000}s (op ${op.id})`);
    return done;
  }

  /**
   * Like runAndWait, but an op id already in the store is waited for instead of run again: a
   * resumed job re-enters its step and must not change a password twice.
   */
  async runOnce(principal: Principal, machine: MachineRecord, spec: OpSpec, opts: { opId: string; expiresAt: number }): Promise<OpRecord> {
    const existing = await this.store.getOp(opts.opId);
    if (!existing) return this.runAndWait(principal, machine, spec, opts);
    if (existing.machineId !== machine.id || existing.kind !== spec.kind) throw new LifelineError("OP_REPLAYED", `Op id "${opts.opId}" belongs to another op`);
    if (!isTerminal(existing.state)) {
      await this.onAgentReady(machine.id); // redeliver if the agent is there; the agent answers from its journal
      const deadline = Date.now() + DATA_OP_TIMEOUT_MS;
      while (Date.now() < deadline) {
        const op = (await this.store.getOp(opts.opId))!;
        if (isTerminal(op.state)) return op;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new LifelineError("OP_TIMED_OUT", `Op ${opts.opId} on "${machine.name}" did not end within ${DATA_OP_TIMEOUT_MS / 1000}s`);
    }
    return existing;
  }

  /** Sends an op if its agent is connected; it stays queued otherwise. */
  private async deliver(op: OpRecord): Promise<void> {
    if (!this.link?.send(op.machineId, { type: "op", op: op.envelope })) return;
    if (op.state === "queued" && (await this.store.transitionOp(op.id, ["queued"], { state: "sent", sentAt: Date.now() }))) {
      await this.emitState(op.id);
    }
    if (op.cancelRequested) this.sendCancel(op);
  }

  /** On a new agent session: deliver queued ops, re-send unfinished ones (the agent dedupes). */
  async onAgentReady(machineId: string): Promise<void> {
    for (const op of await this.store.pendingOps(machineId)) {
      if (op.state === "queued" && op.cancelRequested) {
        await this.finish(op.id, ["queued"], { state: "canceled", finishedAt: Date.now() });
        continue;
      }
      if (op.state === "queued" && op.expiresAt <= Date.now()) continue; // the sweeper expires it
      await this.deliver(op);
    }
  }

  async onStarted(machineId: string, opId: string, startedAt: number): Promise<void> {
    const op = await this.ownOp(machineId, opId);
    if (op && (await this.store.transitionOp(opId, ["queued", "sent"], { state: "running", startedAt }))) await this.emitState(opId);
  }

  async onOutput(machineId: string, opId: string, stream: Stream, seq: number, data: Buffer): Promise<void> {
    const op = await this.ownOp(machineId, opId);
    if (!op || isTerminal(op.state)) return;
    const counts = this.receivedBytes.get(opId) ?? { stdout: 0, stderr: 0, cap: capOf(op) };
    if (counts[stream] + data.length > counts.cap + OUTPUT_SLACK_BYTES) {
      this.log.warn({ opId, machineId }, "agent sent more output than the op's cap; dropped");
      return;
    }
    if (await this.store.appendOutput(opId, { seq, stream, data })) {
      counts[stream] += data.length;
      this.receivedBytes.set(opId, counts);
      this.events.emit(op.runId, { type: "output", opId, stream, seq, data: data.toString("base64") });
    }
  }

  async onFinished(machineId: string, opId: string, result: OpResult): Promise<void> {
    const op = await this.ownOp(machineId, opId);
    if (!op) return;
    await this.finish(opId, ["queued", "sent", "running"], {
      state: result.state,
      startedAt: result.startedAt ?? undefined,
      finishedAt: result.finishedAt,
      exitCode: result.exitCode,
      signal: result.signal,
      stdoutBytes: result.stdoutBytes,
      stderrBytes: result.stderrBytes,
      stdoutTruncated: result.stdoutTruncated,
      stderrTruncated: result.stderrTruncated,
      error: result.error,
      ...(result.data !== undefined ? { data: result.data } : {}),
    });
  }

  async onRejected(machineId: string, opId: string, error: OpError): Promise<void> {
    const op = await this.ownOp(machineId, opId);
    if (!op) return;
    this.log.warn({ opId, machineId, code: error.code }, `agent refused op: ${error.message}`);
    const state = error.code === "OP_EXPIRED" ? "expired" : "failed";
    await this.finish(opId, ["queued", "sent", "running"], { state, finishedAt: Date.now(), error });
  }

  async cancel(principal: Principal, opId: string): Promise<Op> {
    const op = await this.store.getOp(opId);
    if (!op) throw new LifelineError("OP_NOT_FOUND", `No op "${opId}"`);
    if (isTerminal(op.state)) throw new LifelineError("OP_ALREADY_FINISHED", `Op "${opId}" already ended (${op.state})`);
    if (!(await this.finish(opId, ["queued"], { state: "canceled", finishedAt: Date.now(), cancelRequested: true }))) {
      // Sent or running: the agent stops it and reports `canceled`; if the agent is away, the
      // request is kept and delivered when it returns.
      await this.store.transitionOp(opId, ["sent", "running"], { cancelRequested: true });
      this.sendCancel(op);
    }
    await this.audit.record(principal, "op.cancel", op.machineName, "requested", `op=${opId}`);
    return toApiOp((await this.store.getOp(opId))!);
  }

  private sendCancel(op: OpRecord): void {
    const now = Date.now();
    const payload: CancelPayload = { v: 1, type: "cancel", opId: op.id, machineId: op.machineId, issuedAt: now, expiresAt: now + CANCEL_VALIDITY_MS };
    this.link?.send(op.machineId, { type: "cancel", cancel: signJson("cancel", payload, this.key.privateKey) });
  }

  /** Ends ops whose agent never took them in time, or vanished while running them. */
  async sweep(): Promise<void> {
    const now = Date.now();
    for (const op of await this.store.overdueOps(now)) {
      if (op.state === "queued") {
        await this.finish(op.id, ["queued"], { state: "expired", finishedAt: now, error: { code: "OP_EXPIRED", message: "The agent did not take the op before it expired" } });
      } else {
        await this.finish(op.id, ["sent", "running"], {
          state: "failed",
          finishedAt: now,
          error: { code: "AGENT_LOST", message: "The agent did not report a result within the op's timeout" },
        });
      }
    }
  }

  private async finish(opId: string, from: readonly Op["state"][], patch: OpPatch): Promise<boolean> {
    const changed = await this.store.transitionOp(opId, from, patch);
    if (changed) {
      this.receivedBytes.delete(opId);
      this.metrics.opsFinished.inc({ state: patch.state });
      await this.emitState(opId);
    }
    return changed;
  }

  private async emitState(opId: string): Promise<void> {
    const op = await this.store.getOp(opId);
    if (op) this.events.emit(op.runId, { type: "state", op: toApiOp(op) });
  }

  /** An agent may only report on its own ops. */
  private async ownOp(machineId: string, opId: string): Promise<OpRecord | undefined> {
    const op = await this.store.getOp(opId);
    if (!op || op.machineId !== machineId) {
      this.log.warn({ opId, machineId }, "agent reported on an op that is not its own; ignored");
      return undefined;
    }
    return op;
  }
}

/** How error messages name each op kind ("Cannot <verb> on ..."). */
const OP_VERBS: Record<OpSpec["kind"], string> = {
  run: "run a script",
  "accounts.list": "list accounts",
  "accounts.inspect": "diagnose an account",
  "accounts.expire": "expire a password",
  "accounts.clear-flag": "clear the must-change flag",
  "accounts.reset-password": "reset a password",
  "accounts.unlock": "unlock an account",
  "accounts.verify-bind": "check a domain login",
  "domain.configure": "configure a domain",
  "domain.forget": "forget a domain",
};

function notReady(machine: MachineRecord, what: string): LifelineError {
  const since = machine.statusSince ? ` ${ago(machine.statusSince)}` : "";
  return new LifelineError("AGENT_NOT_READY", `Cannot ${what} on "${machine.name}": agent is NotReady (${machine.reason ?? "disconnected"}${since})`);
}

function ago(at: number): string {
  const s = Math.max(0, Math.round((Date.now() - at) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

function capOf(op: OpRecord): number {
  if (op.kind !== "run") return 1024 * 1024;
  const payload = JSON.parse(Buffer.from(op.envelope.payload, "base64url").toString("utf8")) as OpPayload;
  return (payload.args as { outputCapBytes?: number }).outputCapBytes ?? 0;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
