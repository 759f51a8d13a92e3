/**
 * One host's life: boot (loop-mount its disk, launch PID 1 in new namespaces inside its
 * network namespace, wait for sshd) and halt (kill everything in its namespace, unmount,
 * detach the loop device). The disk survives a halt, so a host restarts with its own data.
 */
import { spawn } from "node:child_process";
import { mkdir, open, readFile, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { LabError } from "./errors.js";
import { run, systemEnv } from "./exec.js";
import { BOOT_SCRIPT, INIT_PATH, INIT_SCRIPT } from "./boot-scripts.js";
import { attachLoop, detachLoopsBackedBy, isMountPoint, mountDevice, unmountUnder } from "./mounts.js";
import { netnsPids } from "./network.js";
import { ensureBindTarget, writeFileInRoot } from "./rootfs-files.js";
import { childPids, isAlive, processRef, signal, sleep, waitFor } from "./procs.js";
import type { HostProcessSpec, HostState, ProcessRef } from "./state.js";

export const BOOT_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 3_000;

/** What a booting host records as it goes: the caller persists each step before the next. */
export interface BootRecorder {
  loop(dev: string): Promise<void>;
  launched(launcher: ProcessRef, init: ProcessRef): Promise<void>;
}

/**
 * /etc/hosts and /etc/hostname as a cloud image would get them from its metadata service,
 * the init program, and the mount points of the bind mounts.
 */
async function prepareRoot(root: string, host: HostState, peers: readonly HostState[]): Promise<void> {
  await writeFileInRoot(root, "/etc/hostname", `${host.name}\n`);
  const lines = ["127.0.0.1\tlocalhost", `${host.address}\t${host.name}`];
  for (const p of peers) if (p.name !== host.name) lines.push(`${p.address}\t${p.name}`);
  await writeFileInRoot(root, "/etc/hosts", `${lines.join("\n")}\n`);
  await writeFileInRoot(root, INIT_PATH, INIT_SCRIPT, 0o755);
  for (const bind of host.process?.binds ?? []) {
    const source = await stat(bind.source).catch(() => undefined);
    if (!source) throw new LabError("LAB_INVALID_ARGUMENT", `Cannot bind-mount ${bind.source} into "${host.name}": it does not exist`);
    await ensureBindTarget(root, bind.target ?? bind.source, source.isDirectory());
  }
}

/** The service argv. Its environment travels in the boot chain's environment, not in argv:
 * argv is readable by every user in /proc, environ only by root (enrollment tokens go there). */
function serviceArgv(spec: HostProcessSpec | undefined): string[] {
  return spec ? spec.argv : [];
}

function bindArgs(spec: HostProcessSpec | undefined): string[] {
  const binds = spec?.binds ?? [];
  const args = [String(binds.length)];
  for (const b of binds) args.push(b.source, b.target ?? b.source, b.readOnly === false ? "rw" : "ro");
  return args;
}

export async function logTail(logFile: string, lines = 15): Promise<string> {
  const text = await readFile(logFile, "utf8").catch(() => "");
  return text.trim().split("\n").slice(-lines).join("\n");
}

/**
 * True when a socket in the process's network namespace listens on the TCP port. Read from
 * /proc rather than by connecting, which would make sshd log an aborted connection per boot.
 */
async function listensOn(pid: number, port: number): Promise<boolean> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["tcp", "tcp6"]) {
    const text = await readFile(`/proc/${pid}/net/${table}`, "utf8").catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (local?.endsWith(`:${hexPort}`) && state === "0A") return true;
    }
  }
  return false;
}

export async function bootHost(
  host: HostState,
  peers: readonly HostState[],
  logFile: string,
  record: BootRecorder,
): Promise<void> {
  await mkdir(host.root, { recursive: true });
  if (!(await isMountPoint(host.root))) {
    await detachLoopsBackedBy(host.disk);
    const loop = await attachLoop(host.disk);
    await record.loop(loop);
    await mountDevice("ext4", loop, host.root);
  }
  await prepareRoot(host.root, host, peers);
  await mkdir(dirname(logFile), { recursive: true });
  const log = await open(logFile, "a");
  let launcherPid: number | undefined;
  try {
    const child = spawn(
      "nsenter",
      [
        `--net=/run/netns/${host.netns}`,
        "--",
        "unshare",
        "--mount",
        "--pid",
        "--uts",
        "--ipc",
        "--fork",
        "--kill-child",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        BOOT_SCRIPT,
        "lifeline-boot",
        host.root,
        host.name,
        ...bindArgs(host.process),
        "--",
        ...serviceArgv(host.process),
      ],
      { detached: true, stdio: ["ignore", log.fd, log.fd], env: systemEnv({ TERM: "dumb", ...host.process?.env }) },
    );
    child.on("error", () => undefined);
    child.unref();
    launcherPid = child.pid;
  } finally {
    await log.close();
  }
  if (launcherPid === undefined) throw new LabError("LAB_HOST_BOOT_FAILED", `Cannot start host "${host.name}": spawn failed`);
  // nsenter execs unshare in place; unshare forks the host's PID 1.
  let initPid: number | undefined;
  await waitFor(async () => {
    initPid = (await childPids(launcherPid))[0];
    return initPid !== undefined;
  }, 5_000, 10);
  const launcher = await processRef(launcherPid);
  const init = initPid === undefined ? undefined : await processRef(initPid);
  if (!launcher || !init) {
    throw new LabError("LAB_HOST_BOOT_FAILED", `Host "${host.name}" exited while booting: ${await logTail(logFile)}`);
  }
  await record.launched(launcher, init);
  const ready = await waitFor(async () => (await isAlive(init)) && (await listensOn(init.pid, 22)), BOOT_TIMEOUT_MS, 20);
  if (!ready) {
    throw new LabError(
      "LAB_HOST_BOOT_FAILED",
      `Host "${host.name}" did not answer on ${host.address}:22 within ${BOOT_TIMEOUT_MS / 1000}s: ${await logTail(logFile)}`,
    );
  }
}

/** Stops every process of the host (graceful first), then releases its disk. */
export async function haltHost(host: HostState): Promise<void> {
  // A process that died between fsfreeze -f and -u (a snapshot) leaves the root frozen, and
  // its writers unkillable in uninterruptible sleep: thaw first (harmless when not frozen).
  if (await isMountPoint(host.root)) await run("fsfreeze", ["--unfreeze", host.root], { allowFailure: true });
  // Ask PID 1 to stop its services; the kernel kills the rest of the pid namespace when it exits.
  if (await isAlive(host.init)) signal(host.init!.pid, "SIGTERM");
  await waitFor(async () => (await netnsPids(host.netns)).length === 0, STOP_GRACE_MS);
  await killNetnsProcesses(host.netns);
  await unmountUnder(host.root);
  await detachLoopsBackedBy(host.disk);
}

/**
 * SIGKILL to everything in the namespace until it is empty. Processes found through the netns
 * include ones a crashed lab left behind and commands entered with exec.
 */
export async function killNetnsProcesses(netns: string): Promise<void> {
  for (let round = 0; round < 50; round++) {
    const pids = await netnsPids(netns);
    if (pids.length === 0) return;
    for (const pid of pids) signal(pid, "SIGKILL");
    await sleep(50);
  }
  throw new LabError("LAB_COMMAND_FAILED", `Processes in ${netns} survive SIGKILL: ${(await netnsPids(netns)).join(" ")}`);
}

/** argv that runs a command as root inside a running host (all of its namespaces and root). */
export function hostExecArgv(init: ProcessRef, argv: readonly string[]): string[] {
  return ["nsenter", "-t", String(init.pid), "-m", "-u", "-i", "-n", "-p", "-r", "-w", "--", ...argv];
}
