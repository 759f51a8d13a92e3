import { spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { OpResult, RunArgs, Stream } from "../../protocol/index.js";
import { processStartTime, signalGroup } from "../process-group.js";
import type { OpContext } from "../executor.js";

const KILL_GRACE_MS = 2_000;
// After the script exits, how long to wait for pipes held open by its background children.
const DRAIN_MS = 300;

/** Environment of the agent that scripts must not see. */
const PRIVATE_ENV = /^LIFELINE_/;

/**
 * Runs a `/bin/sh` script from a private file (never spliced into a command line), in its own
 * process group so a timeout or cancel stops everything it started.
 */
export async function runScript(args: RunArgs, ctx: OpContext): Promise<OpResult> {
  const dir = join(ctx.stateDir, "run");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${ctx.opId}.sh`);
  writeFileSync(file, args.script, { mode: 0o700 });
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !PRIVATE_ENV.test(k)));
  const startedAt = Date.now();
  const child = spawn("/bin/sh", [file], { cwd: "/", env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
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
      rmSync(file, { force: true });
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
        error: spawnError ? { code: "INTERNAL", message: `Cannot start /bin/sh: ${spawnError.message}` } : null,
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
