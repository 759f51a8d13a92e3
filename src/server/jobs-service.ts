import { newId } from "../crypto/index.js";
import type { Drivers } from "../drivers/index.js";
import { JobEngine } from "../jobs/engine.js";
import { initialSteps } from "../jobs/steps.js";
import {
  AccountResult,
  FixLogonRequest,
  LifelineError,

  type DriverHandle,
  type Job,
  type OpSpec,
} from "../protocol/index.js";
import { FIX_LOGON_STEP_NAMES, OFFLINE_STEP_NAMES, fixLogonRunbook, type FixLogonPorts } from "../runbooks/fix-logon.js";
import { detectOs } from "../disk/volumes.js";
import { fixAccountOnDisk } from "../repair/account-on-disk.js";
import { reenableAgentOnDisk } from "../repair/agent-on-disk.js";
import type { JobRecord, MachineRecord, OpRecord, Store } from "../store/index.js";
import type { AuditLog } from "./audit.js";
import type { Principal } from "./auth.js";
import type { AgentGateway } from "./gateway.js";
import type { ServerKey } from "./keys.js";
import { opData, type OpsService } from "./ops-service.js";
import { requireDomain, viaMachine } from "./domains.js";
import { checkLogin, openVerifyPassword } from "./login-check.js";

export const toApiJob = ({ params, ...job }: JobRecord): Job => ({ ...job, ...(params.realm ? { realm: params.realm } : {}) });

const accountOf = (op: OpRecord) => AccountResult.parse(opData(op)).account;

const MAX_SEALED_REQUEST_VALIDITY_MS = 15 * 60_000;

/**
 * A sealed request (verify, offline reset) works once: its nonce is kept in the store until it
 * expires, so a captured request cannot be replayed, not even after a server restart. (Jobs
 * reuse their own sealed password on resume and do not come through here.)
 */
export async function consumeSealedNonce(store: Store, binding: { nonce: string; expiresAt: number }): Promise<void> {
  const now = Date.now();
  if (binding.expiresAt <= now || binding.expiresAt > now + MAX_SEALED_REQUEST_VALIDITY_MS) {
    throw new LifelineError("SECRET_BINDING_INVALID", "The sealed password has expired or claims too long a validity");
  }
  if (!(await store.useNonce(binding.nonce, binding.expiresAt, now))) {
    throw new LifelineError("OP_REPLAYED", "This sealed request was already used; seal the password again");
  }
}

/** fix-logon jobs: creation, the runbook's ports onto the control plane, rollback. */
export class JobsService {
  readonly engine: JobEngine;
  /** How long the verify step waits for a machine repaired offline to answer (server setting). */
  bootWaitMs = 90_000;

  constructor(
    private readonly store: Store,
    private readonly ops: OpsService,
    private readonly gateway: AgentGateway,
    private readonly seal: ServerKey,
    private readonly audit: AuditLog,
    private readonly drivers: Drivers,
    log: { error(obj: unknown, msg: string): void },
  ) {
    this.engine = new JobEngine(
      store,
      (job) => fixLogonRunbook(this.ports(job)),
      (err, job) => log.error({ err, jobId: job.id }, "job failed unexpectedly"),
      (job) => this.ended(job),
    );
  }

  async createFixLogon(principal: Principal, machine: MachineRecord, input: FixLogonRequest): Promise<JobRecord> {
    const request = FixLogonRequest.parse(input);
    if (!request.keepPassword && (!request.sealed || !request.verify)) {
      throw new LifelineError("VALIDATION_FAILED", "A new password is needed twice sealed (to the agent, and to the server for the login check and offline repair) unless keepPassword");
    }
    const now = Date.now();
    const job: JobRecord = {
      id: newId(),
      kind: "fix-logon",
      machineId: machine.id,
      machineName: machine.name,
      user: request.user,
      state: "running",
      steps: initialSteps(FIX_LOGON_STEP_NAMES),
      createdAt: now,
      createdBy: principal.label,
      updatedAt: now,
      snapshotName: null,
      path: null,
      verifyOutcome: null,
      error: null,
      params: {
        user: request.user,
        mode: request.keepPassword ? "keep-password" : "new-password",
        snapshot: !request.noSnapshot,
        rollbackOnFailure: request.rollbackOnFailure,
        repairAgent: request.repairAgent,
        fixOpId: request.fixOpId,
        fixExpiresAt: request.fixExpiresAt,
        ...(request.sealed ? { sealed: request.sealed } : {}),
        ...(request.verify ? { verify: request.verify } : {}),
        ...(request.realm ? { realm: request.realm } : {}),
      },
    };
    if (request.realm) await requireDomain(this.store, request.realm);
    const inserted = await this.store.insertJobUnlessActive(job);
    if (!inserted.inserted) {
      throw new LifelineError("JOB_CONFLICT", `"${machine.name}" already has a fix-logon job running (${inserted.activeJobId}); wait for it or see lifeline jobs show ${inserted.activeJobId}`);
    }
    await this.audit.record(principal, "fix-logon.start", request.realm ? `${machine.name}/${request.realm}\\${request.user}` : `${machine.name}/${request.user}`, "started", `job=${job.id} mode=${job.params.mode} snapshot=${job.params.snapshot}`);
    this.engine.start(job.id);
    return job;
  }

  /** A job reached its end: audit it and forget the sealed passwords it no longer needs. */
  private async ended(job: JobRecord): Promise<void> {
    const { sealed: _sealed, verify: _verify, ...params } = job.params;
    await this.store.updateJob(job.id, { params, updatedAt: Date.now() });
    await this.audit.record(job.createdBy, "fix-logon.end", job.params.realm ? `${job.machineName}/${job.params.realm}\\${job.user}` : `${job.machineName}/${job.user}`, job.state, `job=${job.id} path=${job.path ?? "-"} error=${job.error?.code ?? "-"}`);
  }

  private ports(job: JobRecord): FixLogonPorts {
    const principal: Principal = { tokenId: "-", role: "operator", label: job.createdBy };
    const machineOf = async (id: string) => {
      const m = await this.store.getMachineById(id);
      if (!m) throw new LifelineError("MACHINE_NOT_FOUND", `The machine of job ${job.id} was deleted`);
      return m;
    };
    // The agent that changes the account: the machine's own, or for a domain account the agent
    // that reaches the domain (it alone holds the bind credential).
    const fixerOf = async (j: JobRecord) => (j.params.realm ? viaMachine(this.store, await requireDomain(this.store, j.params.realm)) : machineOf(j.machineId));
    const realmArg = (j: JobRecord) => (j.params.realm ? { realm: j.params.realm } : {});
    const target = (j: JobRecord) => (j.params.realm ? `${j.machineName}/${j.params.realm}\\${j.user}` : `${j.machineName}/${j.user}`);
    return {
      agentStatus: async (j) => {
        const m = await fixerOf(j);
        return { ready: this.gateway.isConnected(m.id), reason: m.reason, machineName: m.name };
      },
      inspect: async (j) => accountOf(await this.ops.runAndWait(principal, await fixerOf(j), { kind: "accounts.inspect", args: { user: j.user, ...realmArg(j) } })),
      fixOnce: async (j) => {
        const fixer = await fixerOf(j);
        const spec: OpSpec =
          j.params.mode === "new-password"
            ? {
                kind: "accounts.reset-password",
                args: {
                  user: j.user,
                  allowSystem: false,
                  mustChange: false,
                  sealed: j.params.sealed!,
                  binding: { purpose: "reset-password", machineId: fixer.id, opId: j.params.fixOpId, user: j.user, expiresAt: j.params.fixExpiresAt, ...realmArg(j) },
                  ...realmArg(j),
                },
              }
            : { kind: "accounts.clear-flag", args: { user: j.user, allowSystem: false, ...realmArg(j) } };
        const op = await this.ops.runOnce(principal, fixer, spec, { opId: j.params.fixOpId, expiresAt: j.params.fixExpiresAt });
        const account = accountOf(op);
        await this.audit.record(principal, spec.kind, target(j), "ok", `job=${j.id} op=${op.id}`);
        return account;
      },
      bootWaitMs: this.bootWaitMs,
      verify: async (j) => checkLogin({ store: this.store, ops: this.ops, seal: this.seal, drivers: this.drivers }, principal, j.params.verify!, await machineOf(j.machineId), j.user),
      driverOf: async (machineId) => (await machineOf(machineId)).driver,
      snapshotExists: async (handle, name) => (await this.drivers.for(handle).snapshots.list(handle)).some((s) => s.name === name),
      createSnapshot: async (handle, name) => void (await this.drivers.for(handle).snapshots.create(handle, name)),
      revertSnapshot: async (handle: DriverHandle, name) => void (await this.drivers.for(handle).snapshots.revert(handle, name, { stopIfRunning: true })),
      recordSnapshotName: async (j, name) => this.store.updateJob(j.id, { snapshotName: name, updatedAt: Date.now() }),
      recordVerifyOutcome: async (j, outcome) => this.store.updateJob(j.id, { verifyOutcome: outcome, updatedAt: Date.now() }),
      recordPath: async (j, path) => {
        const names = path === "offline" ? OFFLINE_STEP_NAMES : FIX_LOGON_STEP_NAMES;
        const steps = names.map((name) => j.steps.find((s) => s.name === name) ?? initialSteps([name])[0]!);
        await this.store.updateJob(j.id, { path, steps, updatedAt: Date.now() });
      },
      canRepairOffline: (handle) => this.drivers.for(handle).disk !== undefined,
      powerStop: async (handle) => this.drivers.for(handle).power.stop(handle),
      powerStart: async (handle) => this.drivers.for(handle).power.start(handle),
      attach: async (handle) => (await this.drivers.for(handle).disk!.attach(handle)).mountPath,
      detach: async (handle) => this.drivers.for(handle).disk!.detach(handle),
      repairAgentOffline: async (mountPath) => {
        // The agent's Windows service is not re-enabled offline (its registry entry is in the SYSTEM hive; not built).
        if ((await detectOs(mountPath))?.kind === "windows") return { skipped: "a Windows disk: re-enabling the agent's service offline is not supported" };
        return { changes: await reenableAgentOnDisk(mountPath) };
      },
      editOffline: async (j, mountPath) => {
        if (j.params.mode === "keep-password") {
          const result = await fixAccountOnDisk(mountPath, j.user, { kind: "clear-flag" });
          await this.audit.record(principal, "accounts.clear-flag.offline", `${j.machineName}/${j.user}`, "ok", `job=${j.id} ${result.method}`);
          return result;
        }
        // The server needs the password (Linux: to hash it; Windows: for the startup script): it
        // opens the copy sealed to its own key for the login check, in memory only. The salt and
        // the script's name come from the job id, so a resumed edit writes the very same bytes.
        const password = openVerifyPassword(this.seal, j.params.verify!, await machineOf(j.machineId), j.user);
        try {
          const result = await fixAccountOnDisk(mountPath, j.user, { kind: "set-password", password, saltSeed: j.id, scriptId: j.id });
          await this.audit.record(principal, "accounts.reset-password.offline", `${j.machineName}/${j.user}`, "ok", `job=${j.id} ${result.method}`);
          return result;
        } finally {
          password.fill(0);
        }
      },
    };
  }
}


