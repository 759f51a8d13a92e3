/**
 * A lock file holding the owner's pid, so two `lifeline lab` commands (or a test and the CLI)
 * never change one lab at the same time. A lock whose owner died is taken over: a crash must
 * not wedge the lab.
 */
import { mkdir, open, readFile, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { LabError } from "./errors.js";

// Several operations of one process on one lab queue here instead of in the lock file.
const inProcess = new Map<string, Promise<unknown>>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function acquire(path: string, timeoutMs: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(path, "wx", 0o600);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const owner = Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10);
    if (!Number.isInteger(owner) || !pidAlive(owner)) {
      await rm(path, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new LabError("LAB_BUSY", `Lab is busy: ${path} is held by process ${owner}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function withLock<T>(path: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const previous = inProcess.get(path) ?? Promise.resolve();
  const mine = previous.catch(() => undefined).then(async () => {
    await acquire(path, timeoutMs);
    try {
      return await fn();
    } finally {
      await rm(path, { force: true });
    }
  });
  inProcess.set(path, mine);
  try {
    return await mine;
  } finally {
    if (inProcess.get(path) === mine) inProcess.delete(path);
  }
}
