import { LifelineError, type Account, type DriverHandle, type StepName, type VerifyResult } from "../protocol/index.js";
import type { JobRecord } from "../store/index.js";
import type { Runbook, StepOutcome } from "../jobs/engine.js";

/**
 * What the fix-logon runbook needs from the control plane, kept narrow so the runbook is the
 * seed's procedure and nothing else: agent status, account ops, a login check, the driver.
 */
export interface FixLogonPorts {
  agentStatus(machineId: string): Promise<{ ready: boolean; reason: string | null }>;
  inspect(job: JobRecord): Promise<Account>;
  /** Resets (sealed password) or clears the flag, at most once per job: keyed by params.fixOpId. */
  fixOnce(job: JobRecord): Promise<Account>;
  verify(job: JobRecord): Promise<VerifyResult>;
  driverOf(machineId: string): Promise<DriverHandle | null>;
  snapshotExists(handle: DriverHandle, name: string): Promise<boolean>;
  createSnapshot(handle: DriverHandle, name: string): Promise<void>;
  revertSnapshot(handle: DriverHandle, name: string): Promise<void>;
  /** Records the snapshot name on the job before it is created (so it can never leak). */
  recordSnapshotName(job: JobRecord, name: string): Promise<void>;
  recordVerifyOutcome(job: JobRecord, outcome: VerifyResult["outcome"]): Promise<void>;
}

export const FIX_LOGON_STEP_NAMES = ["check-agent", "diagnose", "snapshot", "fix", "verify"] as const satisfies readonly StepName[];

export function snapshotNameFor(job: JobRecord): string {
  return `fix-logon-${job.id}`;
}

export function fixLogonRunbook(ports: FixLogonPorts): Runbook {
  const steps: Record<(typeof FIX_LOGON_STEP_NAMES)[number], (job: JobRecord) => Promise<StepOutcome>> = {
    async "check-agent"(job) {
      const status = await ports.agentStatus(job.machineId);
      return status.ready
        ? { state: "done", detail: "agent is Ready" }
        : { state: "done", detail: `agent is NotReady (${status.reason ?? "disconnected"}): the online fix cannot run` };
    },
    async diagnose(job) {
      if (!(await ports.agentStatus(job.machineId)).ready) return { state: "skipped", detail: "agent NotReady: cannot diagnose online" };
      const account = await ports.inspect(job);
      const blocking = account.problems.filter((p) => p !== "ok");
      if (!blocking.length) {
        return { state: "done", detail: `${account.name} can already log in (${account.evidence.join("; ")}): nothing to fix`, finish: { state: "succeeded" } };
      }
      const fixable = blocking.every((p) => p === "must-change" || p === "expired" || p === "locked" || p === "inactive");
      if (!fixable || (job.params.mode === "keep-password" && blocking.some((p) => p === "locked"))) {
        const error = { code: "ACCOUNT_CHANGE_FAILED", message: `fix-logon cannot fix ${blocking.join(", ")}: ${account.evidence.join("; ")}` };
        return { state: "done", detail: error.message, finish: { state: "failed", error } };
      }
      return { state: "done", detail: `${account.state}: ${account.evidence.join("; ")}` };
    },
    async snapshot(job) {
      if (!job.params.snapshot) return { state: "skipped", detail: "skipped (--no-snapshot): no way back if the fix goes wrong" };
      const handle = await ports.driverOf(job.machineId);
      if (!handle) throw new LifelineError("NO_DRIVER", `"${job.machineName}" has no driver to snapshot its disk: lifeline machines set-driver, or --no-snapshot`);
      const name = job.snapshotName ?? snapshotNameFor(job);
      if (!job.snapshotName) await ports.recordSnapshotName(job, name);
      if (!(await ports.snapshotExists(handle, name))) await ports.createSnapshot(handle, name);
      const after = await ports.agentStatus(job.machineId);
      if (!after.ready) {
        const error = { code: "AGENT_NOT_READY", message: `agent is NotReady (${after.reason ?? "disconnected"}); disk snapshot ${name} taken. The offline repair path (no agent) comes with the offline-repair feature.` };
        return { state: "done", detail: `snapshot ${name}`, finish: { state: "stopped", error } };
      }
      return { state: "done", detail: `snapshot ${name} (${handle.driver})` };
    },
    async fix(job) {
      const account = await ports.fixOnce(job);
      const action = job.params.mode === "new-password" ? "new password set" : "must-change flag cleared, password kept";
      return { state: "done", detail: `${action}; account now ${account.state}` };
    },
    async verify(job) {
      if (!job.params.verify) return { state: "skipped", detail: "no password given to verify a login with" };
      const result = await ports.verify(job);
      await ports.recordVerifyOutcome(job, result.outcome);
      if (result.outcome !== "ok") throw new LifelineError("LOGIN_NOT_VERIFIED", `a real login still fails: ${result.outcome} (${result.detail})`);
      return { state: "done", detail: `login verified at ${result.address} (${result.durationMs} ms)` };
    },
  };
  return {
    steps: FIX_LOGON_STEP_NAMES,
    run: (step, job) => {
      const fn = steps[step as keyof typeof steps];
      if (!fn) throw new LifelineError("INTERNAL", `fix-logon has no step ${step}`);
      return fn(job);
    },
    canRollback: (job) => job.snapshotName !== null && job.steps.some((s) => s.name === "snapshot" && s.state === "done"),
    async rollback(job) {
      const handle = await ports.driverOf(job.machineId);
      if (!handle || !job.snapshotName) throw new LifelineError("JOB_CONFLICT", "no snapshot to roll back to");
      await ports.revertSnapshot(handle, job.snapshotName);
      return `disk reverted to ${job.snapshotName}`;
    },
  };
}
