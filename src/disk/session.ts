import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { detachLoopsBackedBy, mountsUnder, unmountUnder } from "../lab/mounts.js";
import { tryTool } from "./run.js";

/**
 * Everything one `lifeline disk` run attaches (FUSE exports, loop devices, mounts, a temp dir),
 * written to a state file before and after each step so that it is released on success, on
 * failure, on SIGINT/SIGTERM, and — after a crash — by the next run, which reads the dead
 * run's state file. Release works from the kernel's tables (mountinfo, losetup), not from
 * memory, so a step that crashed half-way is cleaned up too.
 */
export interface SessionState {
  version: 1;
  owner: { pid: number; startTime: string };
  image: string;
  /** Our temp dir: mounts under mnt/, FUSE export files under exp/. */
  tmp: string;
  /** qemu-storage-daemon processes serving this run's exports. */
  daemons: number[];
}

export function stateDir(): string {
  const explicit = process.env["LIFELINE_DISK_STATE_DIR"];
  if (explicit) return explicit;
  return process.getuid?.() === 0 ? "/run/lifeline-disk" : join(tmpdir(), "lifeline-disk");
}

/** Field 22 of /proc/PID/stat: with the pid it names one process, even after pid reuse. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

const active = new Set<DiskSession>();
let signalsInstalled = false;

function onSignal(signal: NodeJS.Signals): void {
  const status = signal === "SIGINT" ? 130 : 143;
  process.stderr.write(`lifeline: ${signal}: releasing the disk (mounts, loop devices, exports)...\n`);
  void Promise.allSettled([...active].map((s) => s.release())).then(() => process.exit(status));
}

function trackSignals(): void {
  if (active.size > 0 && !signalsInstalled) {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    signalsInstalled = true;
  } else if (active.size === 0 && signalsInstalled) {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    signalsInstalled = false;
  }
}

export class DiskSession {
  private released = false;
  private constructor(
    readonly state: SessionState,
    private readonly file: string,
  ) {}

  /** Cleans up crashed runs, then starts recording this one. */
  static async open(image: string): Promise<DiskSession> {
    await recoverCrashed();
    const dir = stateDir();
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = await mkdtemp(join(tmpdir(), "lifeline-disk-"));
    mkdirSync(join(tmp, "mnt"));
    mkdirSync(join(tmp, "exp"));
    const state: SessionState = { version: 1, owner: { pid: process.pid, startTime: startTime(process.pid) ?? "" }, image, tmp, daemons: [] };
    const session = new DiskSession(state, join(dir, `${process.pid}-${randomBytes(4).toString("hex")}.json`));
    await session.save();
    active.add(session);
    trackSignals();
    return session;
  }

  /** Runs `body` and releases the session whatever happens; a release failure does not hide the body's error. */
  static async with<T>(image: string, body: (s: DiskSession) => Promise<T>): Promise<T> {
    const session = await DiskSession.open(image);
    let result: T;
    try {
      result = await body(session);
    } catch (err) {
      await session.release().catch(() => undefined);
      throw err;
    }
    await session.release();
    return result;
  }

  get mountRoot(): string {
    return join(this.state.tmp, "mnt");
  }
  get exportRoot(): string {
    return join(this.state.tmp, "exp");
  }

  async addDaemon(pid: number): Promise<void> {
    this.state.daemons.push(pid);
    await this.save();
  }

  async release(): Promise<void> {
    if (this.released) return;
    await releaseState(this.state);
    this.released = true;
    active.delete(this);
    trackSignals();
    await rm(this.file, { force: true });
  }

  private async save(): Promise<void> {
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, JSON.stringify(this.state, null, 2) + "\n", { mode: 0o600 });
    await rename(tmp, this.file);
  }
}

const pidAlive = (pid: number): boolean => startTime(pid) !== null;

/** A qemu-storage-daemon of ours: checked by its command line, so a reused pid is left alone. */
async function isOurDaemon(pid: number, tmp: string): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  return cmdline.includes("qemu-storage-daemon") && cmdline.includes(tmp);
}

async function stopDaemon(pid: number, tmp: string): Promise<void> {
  if (!(await isOurDaemon(pid, tmp))) return;
  // SIGTERM makes the daemon flush and close the image (qcow2 metadata) and remove its export.
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + 30_000;
  while (pidAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Order matters: file systems, then loop devices, then the exports they read through. */
export async function releaseState(state: SessionState): Promise<void> {
  const mnt = join(state.tmp, "mnt");
  const exp = join(state.tmp, "exp");
  await unmountUnder(mnt);
  await detachLoopsBackedBy(state.image);
  await detachLoopsBackedBy(state.tmp);
  for (const pid of state.daemons) await stopDaemon(pid, state.tmp);
  // A daemon that died without unmounting leaves its FUSE export behind ("transport endpoint").
  for (const point of await mountsUnder(exp)) {
    const r = await tryTool("fusermount", ["-u", point]);
    if (r.exitCode !== 0) await tryTool("umount", ["-l", point]);
  }
  // Removing the temp dir with something still mounted below it would delete the disk's files.
  if ((await mountsUnder(state.tmp)).length === 0) await rm(state.tmp, { recursive: true, force: true });
  else throw new Error(`${state.tmp} still has mounts; left in place`);
}

/** Releases what runs that died (crash, SIGKILL) left attached. Live runs are left alone. */
export async function recoverCrashed(): Promise<string[]> {
  const dir = stateDir();
  const names = await readdir(dir).catch(() => [] as string[]);
  const cleaned: string[] = [];
  for (const name of names.filter((n) => n.endsWith(".json"))) {
    const path = join(dir, name);
    let state: SessionState;
    try {
      state = JSON.parse(await readFile(path, "utf8")) as SessionState;
    } catch {
      continue;
    }
    if (state.version !== 1 || typeof state.tmp !== "string" || !state.tmp.startsWith(join(tmpdir(), "lifeline-disk-"))) continue;
    if (startTime(state.owner.pid) === state.owner.startTime) continue;
    await releaseState(state);
    await rm(path, { force: true });
    cleaned.push(state.image);
  }
  return cleaned;
}
