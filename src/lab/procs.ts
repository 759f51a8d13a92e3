/** Process facts from /proc, and killing a set of processes reliably. */
import { readdir, readFile, readlink } from "node:fs/promises";
import type { ProcessRef } from "./state.js";

async function statFields(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which may itself contain spaces and parentheses.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

export async function startTime(pid: number): Promise<string | undefined> {
  return (await statFields(pid))?.[19];
}

export async function processRef(pid: number): Promise<ProcessRef | undefined> {
  const start = await startTime(pid);
  return start === undefined ? undefined : { pid, startTime: start };
}

/** True when the process is still the one recorded (not dead, not a reused pid). */
export async function isAlive(ref: ProcessRef | undefined): Promise<boolean> {
  if (!ref) return false;
  const fields = await statFields(ref.pid);
  // A zombie has exited; it lingers when its parent is gone and PID 1 does not reap (as on
  // some VM and container inits).
  return fields !== undefined && fields[19] === ref.startTime && fields[0] !== "Z" && fields[0] !== "X";
}

export async function childPids(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8").catch(() => "");
  return text.split(/\s+/).filter(Boolean).map(Number);
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until check() is true or the time is up; returns the last result. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

/**
 * Processes, other than this one, with a file open that matches. After a crash these are the
 * helpers the dead process started (a cp into the store, an mkfs, a losetup): they keep the
 * store busy, so clean-up ends them first.
 */
export async function processesWithOpen(matches: (path: string) => boolean): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      if (target.startsWith("/") && matches(target.replace(/ \(deleted\)$/, ""))) {
        found.push(pid);
        break;
      }
    }
  }
  return found;
}

/** Waits for every task, then throws the first failure: nothing is left running unobserved. */
export async function settleAll(work: Array<Promise<void>>): Promise<void> {
  const results = await Promise.allSettled(work);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}
