import type { JobStep, StepName } from "../protocol/index.js";

/** Immutable helpers over a job's step list. */
export function withStep(steps: readonly JobStep[], name: StepName, patch: Partial<JobStep>): JobStep[] {
  const exists = steps.some((s) => s.name === name);
  const base: JobStep = { name, state: "pending", startedAt: null, finishedAt: null, detail: null };
  return exists ? steps.map((s) => (s.name === name ? { ...s, ...patch } : s)) : [...steps, { ...base, ...patch }];
}

export function initialSteps(names: readonly StepName[]): JobStep[] {
  return names.map((name) => ({ name, state: "pending", startedAt: null, finishedAt: null, detail: null }));
}
