import type { OpError, OpResult } from "../protocol/index.js";

/** The result of an op that produced no process output: it succeeded with data, or failed. */
export function resultWithoutOutput(startedAt: number, outcome: { error: OpError } | { data: unknown }): OpResult {
  const base = { exitCode: null, signal: null, startedAt, finishedAt: Date.now(), stdoutBytes: 0, stderrBytes: 0, stdoutTruncated: false, stderrTruncated: false };
  return "error" in outcome ? { ...base, state: "failed", error: outcome.error } : { ...base, state: "succeeded", error: null, data: outcome.data };
}
