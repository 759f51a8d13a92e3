import { execFile } from "node:child_process";

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program with an argv array (never a shell string) and optional stdin. Secrets go
 * through stdin only: argv and the environment are visible to every user in /proc.
 */
export function execArgv(file: string, args: readonly string[], stdin?: Buffer | string, timeoutMs = 30_000): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: timeoutMs, env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === "number" ? Number((err as { code: number }).code) : 127) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.end(stdin ?? "");
  });
}
