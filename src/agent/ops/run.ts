import { spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LifelineError, type OpResult, type RunArgs, type Stream } from "../../protocol/index.js";
import { processStartTime, signalGroup, stopTree } from "../process-group.js";
import type { OpContext } from "../executor.js";
import { windowsRunPlan } from "../platform/windows-run.js";
import { resultWithoutOutput } from "../results.js";

const KILL_GRACE_MS = 2_000;
// After the script exits, how long to wait for pipes held open by its background children.
const DRAIN_MS = 300;

/** Environment of the agent that scripts must not see. */
const PRIVATE_ENV = /^LIFELINE_/;

export interface LaunchPlan {
  file: string;
  args: string[];
  windowsVerbatimArguments: boolean;
  /** The script, written to this private file first (removed after the run). */
  scriptFile: { path: string; content: Buffer | string } | null;
}

/**
 * How this platform runs the script: sh from a private file on Linux; PowerShell
 * (-EncodedCommand or a .ps1) or cmd (a .cmd) on Windows. Never spliced into a command line.
 */
export function launchPlan(platform: NodeJS.Platform, args: RunArgs, dir: string, opId: string): LaunchPlan {
  if (platform === "win32") {
    if (args.interpreter === "sh") throw new LifelineError("VALIDATION_FAILED", "interpreter sh needs a Linux agent; this machine runs Windows (use powershell or cmd)");
    return windowsRunPlan(args.interpreter, args.script, { dir, opId });
  }
  if (args.interpreter !== "sh") throw new LifelineError("VALIDATION_FAILED", `interpreter ${args.interpreter} needs a Windows agent; this machine runs ${platform} (use sh)`);
  const path = join(dir, `${opId}.sh`);
  return { file: "/bin/sh", args: [path], windowsVerbatimArguments: false, scriptFile: { path, content: args.script } };
}

/**
 * Runs a script in its own process group (Linux) or process tree (Windows), so a timeout or
 * cancel stops everything it started.
 */
export async function runScript(args: RunArgs, ctx: OpContext): Promise<OpResult> {
  const dir = join(ctx.stateDir, "run");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let plan: LaunchPlan;
  try {
    plan = launchPlan(process.platform, args, dir, ctx.opId);
  } catch (err) {
    const e = err as LifelineError;
    return resultWithoutOutput(Date.now(), { error: { code: e.code ?? "INTERNAL", message: e.message } });
  }
  const file = plan.scriptFile?.path;
  if (plan.scriptFile) writeFileSync(plan.scriptFile.path, plan.scriptFile.content, { mode: 0o700 });
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !PRIVATE_ENV.test(k)));
  const startedAt = Date.now();
  const windows = process.platform === "win32";
  const child = spawn(plan.file, plan.args, {
    cwd: windows ? (process.env.SystemRoot ?? "C:\\Windows") : "/",
    env,
    // A new process group on Linux; on Windows `detached` would open a console, and the tree is stopped with taskkill.
    detached: !windows,
    windowsHide: true,
    windowsVerbatimArguments: plan.windowsVerbatimArguments,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const counted = { stdout: 0, stderr: 0 };
  const truncated = { stdout: false, stderr: false };
  const onData = (stream: Stream) => (chunk: Buffer) => {
    const room = args.outputCapBytes - counted[stream];
    if (room <= 0) {
      truncated[stream] = true;
      return;
    }
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (part.length < chunk.length) truncated[stream] = true;
    counted[stream] += part.length;
    ctx.output(stream, part);
  };
  child.stdout!.on("data", onData("stdout"));
  child.stderr!.on("data", onData("stderr"));

  let ending: "timed-out" | "canceled" | undefined;
  const stop = (why: "timed-out" | "canceled") => {
    if (ending || child.pid === undefined) return;
    ending = why;
    if (windows) return stopTree(child.pid);
    signalGroup(child.pid, "SIGTERM");
    setTimeout(() => signalGroup(child.pid!, "SIGKILL"), KILL_GRACE_MS).unref();
  };
  const timer = setTimeout(() => stop("timed-out"), args.timeoutMs);
  ctx.onCancel(() => stop("canceled"));

  return new Promise<OpResult>((resolve) => {
    let spawnError: Error | undefined;
    child.on("error", (err) => (spawnError = err));
    if (child.pid !== undefined) ctx.started(child.pid, processStartTime(child.pid));
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      if (file) rmSync(file, { force: true });
      resolve({
        state: ending ?? (spawnError ? "failed" : code === 0 ? "succeeded" : "failed"),
        exitCode: code,
        signal,
        startedAt,
        finishedAt: Date.now(),
        stdoutBytes: counted.stdout,
        stderrBytes: counted.stderr,
        stdoutTruncated: truncated.stdout,
        stderrTruncated: truncated.stderr,
        error: spawnError ? { code: "INTERNAL", message: `Cannot start ${plan.file}: ${spawnError.message}` } : null,
      });
    };
    child.on("exit", (code, signal) => {
      let done = false;
      const once = () => {
        if (done) return;
        done = true;
        child.stdout!.destroy();
        child.stderr!.destroy();
        finish(code, signal);
      };
      child.on("close", once);
      setTimeout(once, DRAIN_MS).unref();
    });
    child.on("error", () => {
      if (child.pid === undefined) finish(null, null);
    });
  });
}
