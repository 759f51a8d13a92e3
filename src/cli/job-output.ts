import type { ApiClient } from "../client/api-client.js";
import { ERROR_CODES, isErrorCode, type Job } from "../protocol/index.js";
import { safeText } from "./output.js";

const TERMINAL = new Set(["succeeded", "failed", "rolled-back", "stopped"]);

/** Polls a job until it ends, printing a progress line per step change (TTY only). */
export async function followJob(client: ApiClient, id: string, progress: boolean): Promise<Job> {
  const shown = new Map<string, string>();
  for (;;) {
    const job = await client.getJob(id);
    if (progress) {
      for (const step of job.steps) {
        const key = `${step.state}`;
        if (shown.get(step.name) === key || step.state === "pending") continue;
        shown.set(step.name, key);
        process.stderr.write(`  ${step.name.padEnd(12)} ${step.state}${step.detail ? `: ${safeText(step.detail)}` : ""}\n`);
      }
    }
    if (TERMINAL.has(job.state)) return job;
    await new Promise((r) => setTimeout(r, 150));
  }
}

export function printJobSteps(job: Job): void {
  process.stdout.write(`job ${job.id}  ${job.machineName}  ${job.user}  ${job.state}\n`);
  for (const step of job.steps) process.stdout.write(`  ${step.name.padEnd(12)} ${step.state.padEnd(8)} ${safeText(step.detail ?? "")}\n`);
  if (job.error) process.stdout.write(`error: ${job.error.code}: ${safeText(job.error.message)}\n`);
  if (job.state === "failed" && job.snapshotName) process.stdout.write(`to go back: lifeline jobs rollback ${job.id}\n`);
}

/** 0 only when the login was verified, or when there was nothing to fix; else the error's exit code. */
export function jobExitStatus(job: Job): number {
  if (job.state === "succeeded") {
    if (job.verifyOutcome === "ok") return 0;
    // Ended at diagnose (the account could already log in): the verify step never ran.
    return job.steps.find((s) => s.name === "verify")?.state === "pending" ? 0 : 1;
  }
  if (job.error && isErrorCode(job.error.code)) return ERROR_CODES[job.error.code].exit;
  return 1;
}
