/**
 * Runs system programs for the lab. Always argv arrays (never a shell string), a fixed PATH
 * so sbin tools are found whatever the caller's PATH is, and the C locale so output parses.
 */
import { execFile, spawn } from "node:child_process";
import { LabError } from "./errors.js";

export const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The environment every lab command runs with: nothing inherited but what is named here. */
export function systemEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: SYSTEM_PATH, LC_ALL: "C", LANG: "C", HOME: "/root", ...extra };
}

export interface RunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  /** Resolve with the exit code instead of throwing when the program fails. */
  allowFailure?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        env: opts.env ?? systemEnv(),
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
      },
      (err, stdout, stderr) => {
        const exitCode = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        if (err && (!opts.allowFailure || typeof err.code !== "number")) {
          const detail = (stderr || err.message).trim().split("\n").slice(-5).join(" | ");
          reject(new LabError("LAB_COMMAND_FAILED", `Command failed: ${[file, ...args].join(" ")}: ${detail}`, { cause: err }));
          return;
        }
        resolve({ exitCode, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Like run(), but streams output to the given callback: for long jobs such as debootstrap. */
export function runStreaming(
  file: string,
  args: readonly string[],
  onLine: (line: string) => void,
  opts: { env?: NodeJS.ProcessEnv } = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? systemEnv(), stdio: ["ignore", "pipe", "pipe"] });
    const tail: string[] = [];
    const feed = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line.trim()) continue;
        tail.push(line);
        if (tail.length > 20) tail.shift();
        onLine(line);
      }
    };
    child.stdout.on("data", feed);
    child.stderr.on("data", feed);
    child.on("error", (err) => reject(new LabError("LAB_COMMAND_FAILED", `Cannot run ${file}: ${err.message}`, { cause: err })));
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new LabError(
            "LAB_COMMAND_FAILED",
            `Command failed (${signal ?? `exit ${code}`}): ${[file, ...args].join(" ")}: ${tail.slice(-5).join(" | ")}`,
          ),
        );
    });
  });
}

/**
 * Runs a command whose failure most likely means the kernel lacks a feature (loop devices,
 * a filesystem, network namespaces), and says so instead of passing on the tool's message.
 */
export async function runNeedingFeature(
  feature: string,
  symptom: RegExp,
  file: string,
  args: readonly string[],
): Promise<RunResult> {
  const result = await run(file, args, { allowFailure: true });
  if (result.exitCode === 0) return result;
  const detail = result.stderr.trim().split("\n").slice(-3).join(" | ");
  if (symptom.test(result.stderr)) {
    throw new LabError("LAB_KERNEL_FEATURE_MISSING", `This kernel lacks ${feature}: ${[file, ...args].join(" ")}: ${detail}`);
  }
  throw new LabError("LAB_COMMAND_FAILED", `Command failed: ${[file, ...args].join(" ")}: ${detail}`);
}

