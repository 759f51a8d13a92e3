import { LifelineError, type JobState, type StepName } from "../protocol/index.js";
import type { JobRecord, Store } from "../store/index.js";
import { withStep } from "./steps.js";

/** What a step reports: done (or skipped), and optionally that the job ends here. */
export interface StepOutcome {
  state: "done" | "skipped";
  detail: string;
  /** End the job now with this state (e.g. "succeeded" when the account was already fine). */
  finish?: { state: JobState; error?: { code: string; message: string } };
}

/**
 * A runbook: an ordered list of steps, each idempotent given what the job record holds, so a
 * step interrupted by a crash can simply run again; plus how to roll back.
 */
export interface Runbook {
  /** The steps, in order; a step may change the plan (e.g. choose the offline path). */
  steps(job: JobRecord): readonly StepName[];
  /** After a failed step: put the machine back in service (e.g. give a repaired disk back); returns the steps it did. */
  cleanup?(job: JobRecord): Promise<{ step: StepName; detail: string }[]>;
  run(step: StepName, job: JobRecord): Promise<StepOutcome>;
  /** Undo what the job did (revert the snapshot); returns a line for the record. */
  rollback(job: JobRecord): Promise<string>;
  canRollback(job: JobRecord): boolean;
}

/**
 * Runs durable jobs: every step is recorded as running before it starts and as done, skipped
 * or failed after it ends, so a server killed at any point resumes from the record. One
 * process runs a given job at a time (the `running` set); other replicas would need a lease.
 */
const FINAL_STATES = new Set<JobState>(["succeeded", "failed", "rolled-back", "stopped"]);

export class JobEngine {
  private readonly running = new Map<string, Promise<void>>();
  /** Test hook (LIFELINE_JOB_STEP_DELAY_MS): a pause around each step's work, to crash inside it. */
  stepDelayMs = 0;

  constructor(
    private readonly store: Store,
    private readonly runbookFor: (job: JobRecord) => Runbook,
    private readonly onError: (err: unknown, job: JobRecord) => void,
    /** Called once a job reaches a final state (audit, forgetting its sealed secrets). */
    private readonly onEnd: (job: JobRecord) => Promise<void> = async () => undefined,
  ) {}

  /** Starts (or resumes) a job in the background; returns at once. */
  start(jobId: string): void {
    if (this.running.has(jobId)) return;
    const work = this.drive(jobId)
      .catch(async (err) => {
        const job = await this.store.getJob(jobId);
        if (job) this.onError(err, job);
      })
      .finally(() => this.running.delete(jobId));
    this.running.set(jobId, work);
  }

  async resumeAll(): Promise<number> {
    const jobs = await this.store.jobsInStates(["running", "rolling-back"]);
    for (const job of jobs) this.start(job.id);
    return jobs.length;
  }

  /** Waits for a job this engine is running (tests, shutdown). */
  async settle(jobId: string): Promise<void> {
    await this.running.get(jobId);
  }

  async requestRollback(jobId: string): Promise<void> {
    const job = await this.store.getJob(jobId);
    if (!job) throw new LifelineError("JOB_NOT_FOUND", `No job "${jobId}"`);
    if (this.running.has(jobId)) throw new LifelineError("JOB_CONFLICT", `Job "${jobId}" is still running; wait for it to end`);
    if (!this.runbookFor(job).canRollback(job)) throw new LifelineError("JOB_CONFLICT", `Job "${jobId}" has no snapshot to roll back to`);
    if (job.state === "rolled-back") return;
    await this.store.updateJob(jobId, { state: "rolling-back", updatedAt: Date.now() });
    this.start(jobId);
  }

  private async drive(jobId: string): Promise<void> {
    let job = (await this.store.getJob(jobId))!;
    const runbook = this.runbookFor(job);
    if (job.state === "running") {
      for (let i = 0; i < runbook.steps(job).length; i++) {
        job = (await this.store.getJob(jobId))!;
        const name = runbook.steps(job)[i]!;
        const step = job.steps.find((s) => s.name === name);
        if (step && (step.state === "done" || step.state === "skipped")) continue;
        await this.save(job, { steps: withStep(job.steps, name, { state: "running", startedAt: step?.startedAt ?? Date.now() }) });
        await this.pause();
        let outcome: StepOutcome;
        try {
          outcome = await runbook.run(name, (await this.store.getJob(jobId))!);
        } catch (err) {
          const error = err instanceof LifelineError ? { code: err.code, message: err.message } : { code: "INTERNAL", message: (err as Error).message };
          job = (await this.store.getJob(jobId))!;
          await this.save(job, { steps: withStep(job.steps, name, { state: "failed", finishedAt: Date.now(), detail: error.message }) });
          try {
            for (const done of (await runbook.cleanup?.((await this.store.getJob(jobId))!)) ?? []) {
              const current = (await this.store.getJob(jobId))!;
              await this.save(current, { steps: withStep(current.steps, done.step, { state: "done", finishedAt: Date.now(), detail: `${done.detail} (cleanup after the failure)` }) });
            }
          } catch (cleanupErr) {
            error.message += `; putting the machine back failed too: ${(cleanupErr as Error).message}`;
          }
          job = (await this.store.getJob(jobId))!;
          await this.save(job, { state: "failed", error });
          job = (await this.store.getJob(jobId))!;
          if (job.params.rollbackOnFailure && runbook.canRollback(job)) {
            await this.save(job, { state: "rolling-back" });
            return this.rollBack(jobId, runbook);
          }
          return;
        }
        await this.pause();
        job = (await this.store.getJob(jobId))!;
        await this.save(job, {
          steps: withStep(job.steps, name, { state: outcome.state, finishedAt: Date.now(), detail: outcome.detail }),
          ...(outcome.finish ? { state: outcome.finish.state, error: outcome.finish.error ?? null } : {}),
        });
        if (outcome.finish) return;
      }
      job = (await this.store.getJob(jobId))!;
      await this.save(job, { state: "succeeded" });
      return;
    }
    if (job.state === "rolling-back") await this.rollBack(jobId, runbook);
  }

  private async rollBack(jobId: string, runbook: Runbook): Promise<void> {
    let job = (await this.store.getJob(jobId))!;
    await this.save(job, { steps: withStep(job.steps, "rollback", { state: "running", startedAt: Date.now(), finishedAt: null, detail: null }) });
    try {
      const detail = await runbook.rollback(job);
      job = (await this.store.getJob(jobId))!;
      await this.save(job, { state: "rolled-back", steps: withStep(job.steps, "rollback", { state: "done", finishedAt: Date.now(), detail }) });
    } catch (err) {
      const message = (err as Error).message;
      job = (await this.store.getJob(jobId))!;
      await this.save(job, {
        state: "failed",
        error: { code: err instanceof LifelineError ? err.code : "INTERNAL", message: `rollback failed: ${message}` },
        steps: withStep(job.steps, "rollback", { state: "failed", finishedAt: Date.now(), detail: message }),
      });
    }
  }

  private async save(job: JobRecord, patch: Omit<Parameters<Store["updateJob"]>[1], "updatedAt">): Promise<void> {
    await this.store.updateJob(job.id, { ...patch, updatedAt: Date.now() });
    if (patch.state && FINAL_STATES.has(patch.state)) await this.onEnd((await this.store.getJob(job.id))!);
  }

  private async pause(): Promise<void> {
    if (this.stepDelayMs > 0) await new Promise((r) => setTimeout(r, this.stepDelayMs));
  }
}
