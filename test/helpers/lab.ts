/**
 * Test helper: a real lab for one test file, torn down whatever happens.
 *
 *   const lab = await startLab({ hosts: 2 });   // in beforeAll
 *   await lab.exec("lab-1", ["id", "alice"]);
 *   // afterAll (registered by this module), SIGINT/SIGTERM and the next run's sweep call down()
 *
 * Each lab gets its own name, directory and /24 (picked among subnets the machine does not
 * route yet), so labs of different files or runs never collide.
 */
import { createHash } from "node:crypto";
import { readdir, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { afterAll } from "vitest";
import { defaultCacheDir, isLabError, Lab, type HostStatus, type LabOptions, type RunResult, type UpOptions } from "../../src/lab/index.js";

export interface TestLabOptions {
  hosts?: number;
  /** Default: a fresh directory under <cacheDir>/labs/. */
  labDir?: string;
  process?: UpOptions["process"];
  onProgress?: LabOptions["onProgress"];
}

export interface TestLab {
  lab: Lab;
  name: string;
  labDir: string;
  gatewayAddress: string;
  hosts: Array<Pick<HostStatus, "name" | "address" | "diskPath">>;
  host(name: string): Pick<HostStatus, "name" | "address" | "diskPath">;
  exec(host: string, argv: readonly string[], opts?: { input?: string }): Promise<RunResult>;
  stop(host: string): Promise<void>;
  start(host: string): Promise<void>;
  down(): Promise<void>;
}

const OWNER_FILE = "test-owner";
const live = new Set<TestLab>();

// Registered when a test file imports this module, so it runs for that file even when a
// test or beforeAll throws.
afterAll(async () => {
  for (const lab of [...live]) await lab.down();
}, 120_000);

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(sig, () => {
    void Promise.allSettled([...live].map((l) => l.down())).finally(() => process.exit(130));
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Takes down test labs whose process died without cleaning up (a crash, a SIGKILL). */
async function sweepStaleLabs(labsDir: string): Promise<void> {
  for (const name of await readdir(labsDir).catch(() => [] as string[])) {
    const dir = join(labsDir, name);
    const owner = Number.parseInt(await readFile(join(dir, OWNER_FILE), "utf8").catch(() => ""), 10);
    if (!Number.isInteger(owner) || pidAlive(owner)) continue;
    await new Lab({ name, labDir: dir }).down({ purge: true });
    await rm(dir, { recursive: true, force: true });
  }
}

function routedSubnets(): string {
  return execFileSync("ip", ["-4", "route", "show", "table", "all"], { encoding: "utf8", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } });
}

export async function startLab(opts: TestLabOptions = {}): Promise<TestLab> {
  const labsDir = join(defaultCacheDir(), "labs");
  await sweepStaleLabs(labsDir);
  // t + 6 hex of (pid, time): unique per process and run, short enough for interface names.
  const name = `t${createHash("sha256").update(`${process.pid}-${Date.now()}-${Math.random()}`).digest("hex").slice(0, 6)}`;
  const labDir = opts.labDir ?? join(labsDir, name);
  await mkdir(labDir, { recursive: true });
  await writeFile(join(labDir, OWNER_FILE), `${process.pid}\n`);
  const start = Number.parseInt(name.slice(1, 3), 16) % 150;
  let lastError: unknown;
  for (let i = 0; i < 150; i++) {
    const third = 100 + ((start + i) % 150);
    const subnet = `10.231.${third}.0/24`;
    if (routedSubnets().includes(`10.231.${third}.`)) continue;
    const lab = new Lab({ name, labDir, subnet, onProgress: opts.onProgress });
    const handle = makeHandle(lab, labDir, opts.labDir === undefined);
    live.add(handle);
    try {
      const status = await lab.up({ hosts: opts.hosts ?? 2, process: opts.process });
      handle.hosts.push(...status.hosts.map(({ name: n, address, diskPath }) => ({ name: n, address, diskPath })));
      return handle;
    } catch (err) {
      if (!isLabError(err, "LAB_SUBNET_IN_USE")) {
        await handle.down();
        throw err;
      }
      // Another lab took this subnet between our check and our up: try the next one.
      await lab.down();
      live.delete(handle);
      lastError = err;
    }
  }
  throw lastError ?? new Error("No free lab subnet in 10.231.100-249.0/24");
}

function makeHandle(lab: Lab, labDir: string, ownsDir: boolean): TestLab {
  let downed: Promise<void> | undefined;
  const handle: TestLab = {
    lab,
    name: lab.name,
    labDir,
    gatewayAddress: lab.gatewayAddress,
    hosts: [],
    host(name) {
      const h = handle.hosts.find((x) => x.name === name);
      if (!h) throw new Error(`No host ${name} in test lab ${lab.name}`);
      return h;
    },
    exec: (host, argv, o) => lab.exec(host, argv, o),
    stop: (host) => lab.stop(host),
    start: (host) => lab.start(host),
    down() {
      downed ??= (async () => {
        await lab.down({ purge: true });
        if (ownsDir) await rm(labDir, { recursive: true, force: true });
        live.delete(handle);
      })();
      return downed;
    },
  };
  return handle;
}

export interface SshResult {
  /** False when the connection or authentication failed (see error). */
  connected: boolean;
  exitCode: number | null;
  stdout: string;
  stderr: string;
  error?: string;
}

/** Logs in with a password over real SSH (ssh2) and runs one command, as a user would. */
export async function sshExec(address: string, username: string, password: string, command: string, timeoutMs = 10_000, port = 22): Promise<SshResult> {
  const { Client } = await import("ssh2");
  return new Promise((resolve) => {
    const client = new Client();
    const result: SshResult = { connected: false, exitCode: null, stdout: "", stderr: "" };
    const timer = setTimeout(() => finish("timeout"), timeoutMs);
    function finish(error?: string) {
      clearTimeout(timer);
      if (error && !result.error) result.error = error;
      client.end();
      resolve(result);
    }
    client.on("error", (err) => finish(err.message));
    client.on("ready", () => {
      result.connected = true;
      client.exec(command, (err, stream) => {
        if (err) return finish(err.message);
        stream.on("data", (d: Buffer) => (result.stdout += d.toString("utf8")));
        stream.stderr.on("data", (d: Buffer) => (result.stderr += d.toString("utf8")));
        stream.on("exit", (code: number | null) => (result.exitCode = code));
        stream.on("close", () => finish());
      });
    });
    client.connect({ host: address, port, username, password, readyTimeout: timeoutMs, tryKeyboard: false });
  });
}
