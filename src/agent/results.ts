import { LifelineError, type OpError, type OpResult } from "../protocol/index.js";

/** The result of an op that produced no process output: it succeeded with data, or failed. */
export function resultWithoutOutput(startedAt: number, outcome: { error: OpError } | { data: unknown }): OpResult {
  const base = { exitCode: null, signal: null, startedAt, finishedAt: Date.now(), stdoutBytes: 0, stderrBytes: 0, stdoutTruncated: false, stderrTruncated: false };
  return "error" in outcome ? { ...base, state: "failed", error: outcome.error } : { ...base, state: "succeeded", error: null, data: outcome.data };
}

/** Runs an op that returns data: its data, or its LifelineError as the op's error. */
export async function dataOp(action: () => Promise<unknown> | unknown): Promise<OpResult> {
  const startedAt = Date.now();
  try {
    return resultWithoutOutput(startedAt, { data: await action() });
  } catch (err) {
    const error = err instanceof LifelineError ? { code: err.code, message: err.message } : { code: "INTERNAL", message: (err as Error).message };
    return resultWithoutOutput(startedAt, { error });
  }
}
