import { LifelineError, type Account, type DriverHandle, type StepName, type VerifyResult } from "../protocol/index.js";
import type { JobRecord } from "../store/index.js";
import type { Runbook, StepOutcome } from "../jobs/engine.js";

/**
 * What the fix-logon runbook needs from the control plane, kept narrow so the runbook is the
 * seed's procedure and nothing else: agent status, account ops, a login check, the driver.
 */
export interface FixLogonPorts {
  /** The agent that fixes the job's account: the machine's, or the domain's for a domain account. */
  agentStatus(job: JobRecord): Promise<{ ready: boolean; reason: string | null; machineName: string }>;
  inspect(job: JobRecord): Promise<Account>;
  /** Resets (sealed password) or clears the flag, at most once per job: keyed by params.fixOpId. */
  fixOnce(job: JobRecord): Promise<Account>;
  verify(job: JobRecord): Promise<VerifyResult>;
  /** How long a machine repaired offline may take to boot and answer a login again. */
  bootWaitMs: number;
  driverOf(machineId: string): Promise<DriverHandle | null>;
  snapshotExists(handle: DriverHandle, name: string): Promise<boolean>;
  createSnapshot(handle: DriverHandle, name: string): Promise<void>;
  revertSnapshot(handle: DriverHandle, name: string): Promise<void>;
  /** Records the snapshot name on the job before it is created (so it can never leak). */
  recordSnapshotName(job: JobRecord, name: string): Promise<void>;
  /** Records the path (and the offline steps in place of the online fix). */
  recordPath(job: JobRecord, path: "online" | "offline"): Promise<void>;
  canRepairOffline(handle: DriverHandle): boolean;
  powerStop(handle: DriverHandle): Promise<void>;
  powerStart(handle: DriverHandle): Promise<void>;
  /** Attaches the stopped machine's disk (idempotent) and returns where it is mounted. */
  attach(handle: DriverHandle): Promise<string>;
  detach(handle: DriverHandle): Promise<void>;
  /** Edits the account on the mounted disk; the same job always writes the same bytes. */
  editOffline(job: JobRecord, mountPath: string): Promise<{ summary: string }>;
  /** What it changed to make the agent start again, or why it did not look. */
  repairAgentOffline(mountPath: string): Promise<{ changes: string[] } | { skipped: string }>;
  recordVerifyOutcome(job: JobRecord, outcome: VerifyResult["outcome"]): Promise<void>;
}

export const FIX_LOGON_STEP_NAMES = ["check-agent", "diagnose", "snapshot", "fix", "verify"] as const satisfies readonly StepName[];
export const OFFLINE_STEP_NAMES = ["check-agent", "diagnose", "snapshot", "stop", "attach", "edit", "repair-agent", "detach", "start", "verify"] as const satisfies readonly StepName[];

export function snapshotNameFor(job: JobRecord): string {
  return `fix-logon-${job.id}`;
}

export function fixLogonRunbook(ports: FixLogonPorts): Runbook {
  const handleOf = async (job: JobRecord): Promise<DriverHandle> => {
    const handle = await ports.driverOf(job.machineId);
    if (!handle) throw new LifelineError("NO_DRIVER", `"${job.machineName}" has no driver: lifeline machines set-driver`);
    return handle;
  };
  const steps: Record<(typeof OFFLINE_STEP_NAMES)[number] | "fix", (job: JobRecord) => Promise<StepOutcome>> = {
    async "check-agent"(job) {
      const status = await ports.agentStatus(job);
      if (job.params.realm) {
        // A domain account lives on the DCs, not on this disk: there is no offline path.
        if (!status.ready) {
          const error = { code: "AGENT_NOT_READY", message: `the agent of ${status.machineName}, which reaches ${job.params.realm}, is NotReady (${status.reason ?? "disconnected"})` };
          return { state: "done", detail: error.message, finish: { state: "failed", error } };
        }
        await ports.recordPath(job, "online");
        return { state: "done", detail: `domain account: the fix goes to ${job.params.realm} through the agent of ${status.machineName}` };
      }
      if (status.ready) {
        await ports.recordPath(job, "online");
        return { state: "done", detail: "agent is Ready: online fix" };
      }
      const handle = await ports.driverOf(job.machineId);
      if (handle && ports.canRepairOffline(handle)) {
        await ports.recordPath(job, "offline");
        return { state: "done", detail: `agent is NotReady (${status.reason ?? "disconnected"}): offline repair of the disk through the ${handle.driver} driver` };
      }
      await ports.recordPath(job, "online");
      return { state: "done", detail: `agent is NotReady (${status.reason ?? "disconnected"}) and no driver can repair the disk offline` };
    },
    async diagnose(job) {
      if (!(await ports.agentStatus(job)).ready) return { state: "skipped", detail: "agent NotReady: cannot diagnose online" };
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
      const after = await ports.agentStatus(job);
      if (!after.ready && job.path !== "offline") {
        const error = { code: "AGENT_NOT_READY", message: `agent is NotReady (${after.reason ?? "disconnected"}); disk snapshot ${name} taken, but this machine's driver cannot repair its disk offline` };
        return { state: "done", detail: `snapshot ${name}`, finish: { state: "stopped", error } };
      }
      return { state: "done", detail: `snapshot ${name} (${handle.driver})` };
    },
    async fix(job) {
      const account = await ports.fixOnce(job);
      const action = job.params.mode === "new-password" ? "new password set" : "must-change flag cleared, password kept";
      return { state: "done", detail: `${action}; account now ${account.state}` };
    },
    async stop(job) {
      await ports.powerStop(await handleOf(job));
      return { state: "done", detail: "machine stopped" };
    },
    async attach(job) {
      return { state: "done", detail: `disk attached at ${await ports.attach(await handleOf(job))}` };
    },
    async edit(job) {
      const { summary } = await ports.editOffline(job, await ports.attach(await handleOf(job)));
      return { state: "done", detail: summary };
    },
    async "repair-agent"(job) {
      if (!job.params.repairAgent) return { state: "skipped", detail: "not asked (--repair-agent)" };
      const result = await ports.repairAgentOffline(await ports.attach(await handleOf(job)));
      if ("skipped" in result) return { state: "skipped", detail: result.skipped };
      return { state: "done", detail: result.changes.length ? result.changes.join("; ") : "the agent was already enabled on the disk" };
    },
    async detach(job) {
      await ports.detach(await handleOf(job));
      return { state: "done", detail: "disk given back" };
    },
    async start(job) {
      await ports.powerStart(await handleOf(job));
      return { state: "done", detail: "machine started" };
    },
    async verify(job) {
      if (!job.params.verify) return { state: "skipped", detail: "no password given to verify a login with" };
      // After an offline repair the machine is booting: wait for its sshd to answer.
      let result = await ports.verify(job);
      const deadline = Date.now() + (job.path === "offline" ? ports.bootWaitMs : 0);
      while (result.outcome === "unreachable" && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500));
        result = await ports.verify(job);
      }
      await ports.recordVerifyOutcome(job, result.outcome);
      if (result.outcome !== "ok") throw new LifelineError("LOGIN_NOT_VERIFIED", `a real login still fails: ${result.outcome} (${result.detail})`);
      return { state: "done", detail: `login verified at ${result.address} (${result.durationMs} ms)` };
    },
  };
  return {
    steps: (job) => (job.path === "offline" ? OFFLINE_STEP_NAMES : FIX_LOGON_STEP_NAMES),
    async cleanup(job) {
      if (job.path !== "offline") return [];
      const touched = job.steps.some((s) => (s.name === "attach" || s.name === "edit") && s.state !== "pending");
      const returned = job.steps.some((s) => s.name === "start" && s.state === "done");
      if (!touched || returned) return [];
      // The disk is never left attached: give it back and start the machine as it was.
      const handle = await handleOf(job);
      await ports.detach(handle);
      await ports.powerStart(handle);
      return [
        { step: "detach", detail: "disk given back" },
        { step: "start", detail: "machine started" },
      ];
    },
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
