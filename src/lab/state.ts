/**
 * The lab's state file: what the lab has created. Every change is written (atomically)
 * before the resource it describes is made, so after a crash `down` knows what may exist.
 * `down` also searches the kernel's tables by name, so a state file lost with the crash still
 * leaves nothing behind.
 */
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { z } from "zod";

export const STATE_VERSION = 1;

// Absolute, normalised, no "." or "..": a target like "/../etc" must not leave the host's root.
const HostPath = z.string().regex(/^(\/(?!\.\.?(\/|$))[^/\0]+)+$/, "an absolute path without . or .. components");

const BindMount = z.object({
  source: HostPath,
  /** Path inside the host; the same as source by default. */
  target: HostPath.optional(),
  /** Default true: the host cannot change the machine's files through the bind. */
  readOnly: z.boolean().optional(),
});

const HostProcess = z.object({
  argv: z.array(z.string()).min(1),
  env: z.record(z.string(), z.string()).optional(),
  binds: z.array(BindMount).optional(),
});

const ProcessRef = z.object({
  pid: z.number().int(),
  /** /proc/PID/stat start time: tells our process from a later one that reused the pid. */
  startTime: z.string(),
});

const HostState = z.object({
  name: z.string(),
  slot: z.number().int(),
  address: z.string(),
  netns: z.string(),
  disk: z.string(),
  root: z.string(),
  process: HostProcess.optional(),
  loop: z.string().optional(),
  /** The `unshare` parent outside the host and the host's PID 1. */
  launcher: ProcessRef.optional(),
  init: ProcessRef.optional(),
  /**
   * The disk is attached for offline repair (mounted read-write at mountPath, host stopped):
   * recorded before the mount so `down` cleans it up; a start is refused while it is set.
   */
  attached: z.object({ mountPath: z.string(), loop: z.string().optional(), rescue: ProcessRef.optional() }).optional(),
});

const LabStateSchema = z.object({
  version: z.literal(STATE_VERSION),
  lab: z.string(),
  labDir: z.string(),
  subnet: z.string(),
  imageKey: z.string().optional(),
  store: z.object({ image: z.string(), mountpoint: z.string(), loop: z.string().optional() }).optional(),
  network: z.object({ bridgeNetns: z.string(), rootVeth: z.string(), gateway: z.string() }).optional(),
  hosts: z.record(z.string(), HostState),
});

export type BindMount = z.infer<typeof BindMount>;
export type HostProcessSpec = z.infer<typeof HostProcess>;
export type ProcessRef = z.infer<typeof ProcessRef>;
export type HostState = z.infer<typeof HostState>;
export type LabState = z.infer<typeof LabStateSchema>;

export { HostProcess as HostProcessSchema };

export async function readState(file: string): Promise<LabState | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return LabStateSchema.parse(JSON.parse(text));
}

/** Write-then-rename: a crash mid-write leaves the previous state, never half a file. */
export async function writeState(file: string, state: LabState): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

export async function removeState(file: string): Promise<void> {
  await rm(file, { force: true });
}
