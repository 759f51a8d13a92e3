import { run, type RunResult } from "../lab/exec.js";
import { DiskError } from "./errors.js";

/** A system command for disk work: argv only; a failure becomes a DiskError with the tool's last lines. */
export async function runTool(file: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const result = await run(file, args, { ...opts, allowFailure: true }).catch((err: unknown) => {
    throw new DiskError("tool-failed", `Cannot run ${file}: ${(err as Error).message}`, { cause: err });
  });
  if (result.exitCode !== 0) throw new DiskError("tool-failed", `${file} failed: ${lastLines(result.stderr)}`);
  return result;
}

/** Like runTool, but hands back a failing result for the caller to interpret. */
export function tryTool(file: string, args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return run(file, args, { ...opts, allowFailure: true }).catch((err: unknown) => {
    throw new DiskError("tool-failed", `Cannot run ${file}: ${(err as Error).message}`, { cause: err });
  });
}

export const lastLines = (text: string, n = 3): string => text.trim().split("\n").slice(-n).join(" | ");
