import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LabError } from "./errors.js";
import { isAlive, processRef, signal, sleep, waitFor } from "./procs.js";

/**
 * The lab's own control plane: a `lifeline server` listening on the lab gateway address (the
 * only machine address the hosts can reach), with its data in the lab directory so `lab down`
 * forgets the lab's machines along with their disks.
 */
export interface LabServer {
  url: string;
  adminToken: string;
  pid: number;
}

interface PidFile {
  pid: number;
  startTime: string;
  url: string;
}

const refOf = (info: PidFile) => ({ pid: info.pid, startTime: info.startTime });

const dataDir = (labDir: string) => join(labDir, "server");
const pidFile = (labDir: string) => join(labDir, "server.pid.json");

async function running(labDir: string): Promise<PidFile | undefined> {
  if (!existsSync(pidFile(labDir))) return undefined;
  const info = JSON.parse(readFileSync(pidFile(labDir), "utf8")) as PidFile;
  return (await isAlive(refOf(info))) ? info : undefined;
}

async function waitHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(new URL("/healthz", url))).ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new LabError("LAB_COMMAND_FAILED", `The lab server did not answer at ${url} within ${timeoutMs / 1000}s`);
    await sleep(100);
  }
}

export async function startLabServer(opts: { labDir: string; host: string; port: number; binary: string }): Promise<LabServer> {
  const url = `http://${opts.host}:${opts.port}`;
  const existing = await running(opts.labDir);
  if (!existing) {
    mkdirSync(dataDir(opts.labDir), { recursive: true, mode: 0o700 });
    const log = openSync(join(opts.labDir, "server.log"), "a", 0o600);
    const child = spawn(process.execPath, [opts.binary, "server", "--host", opts.host, "--port", String(opts.port), "--data-dir", dataDir(opts.labDir)], {
      detached: true,
      stdio: ["ignore", log, log],
      env: { ...process.env, LIFELINE_WRITE_CLI_CONFIG: "0" },
    });
    child.unref();
    const ref = await processRef(child.pid!);
    if (!ref) throw new LabError("LAB_COMMAND_FAILED", `The lab server exited at once; see ${join(opts.labDir, "server.log")}`);
    writeFileSync(pidFile(opts.labDir), JSON.stringify({ ...ref, url } satisfies PidFile), { mode: 0o600 });
  }
  await waitHealthy(existing?.url ?? url, 15_000);
  const adminToken = readFileSync(join(dataDir(opts.labDir), "admin-token"), "utf8").trim();
  return { url: existing?.url ?? url, adminToken, pid: (await running(opts.labDir))!.pid };
}

export async function labServerInfo(labDir: string): Promise<{ url: string; adminToken: string } | undefined> {
  const info = await running(labDir);
  if (!info) return undefined;
  return { url: info.url, adminToken: readFileSync(join(dataDir(labDir), "admin-token"), "utf8").trim() };
}

/** Stops the lab server and deletes its data (the lab's machines go with their disks). */
export async function stopLabServer(labDir: string): Promise<void> {
  const info = await running(labDir);
  if (info) {
    signal(info.pid, "SIGTERM");
    if (!(await waitFor(async () => !(await isAlive(refOf(info))), 5000))) signal(info.pid, "SIGKILL");
  }
  rmSync(pidFile(labDir), { force: true });
  rmSync(dataDir(labDir), { recursive: true, force: true });
  rmSync(join(labDir, "server.log"), { force: true });
}
