import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { ShortB64, Id, LifelineError, MachineName } from "../protocol/index.js";

/** What an enrolled agent keeps: its identity, its private keys, the pinned server key. 0600. */
export const AgentState = z.object({
  version: z.literal(1),
  serverUrl: z.string().url(),
  machineId: Id,
  name: MachineName,
  serverSignPublicKey: ShortB64.length(43),
  signPrivateKeyPem: z.string().includes("PRIVATE KEY"),
  sealPrivateKeyPem: z.string().includes("PRIVATE KEY"),
  enrolledAt: z.number().int(),
});
export type AgentState = z.infer<typeof AgentState>;

export function defaultStateDir(): string {
  if (process.getuid?.() === 0) return "/var/lib/lifeline-agent";
  return join(process.env.XDG_STATE_HOME || join(process.env.HOME ?? "/tmp", ".local", "state"), "lifeline-agent");
}

export function ensureStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

const statePath = (dir: string) => join(dir, "state.json");

export function loadAgentState(dir: string): AgentState | undefined {
  const path = statePath(dir);
  if (!existsSync(path)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new LifelineError("AGENT_STATE_INVALID", `Cannot read agent state ${path}: ${(err as Error).message}`);
  }
  const parsed = AgentState.safeParse(raw);
  if (!parsed.success) throw new LifelineError("AGENT_STATE_INVALID", `Agent state ${path} is not valid (${parsed.error.issues[0]!.message}); remove it to enroll again`);
  return parsed.data;
}

/**
 * Writes a file so that a crash leaves either the old or the new content, never a mix.
 * `durable` also survives power loss (fsync before the rename), at a disk-flush's cost.
 */
export function writeFileAtomic(path: string, content: string, mode = 0o600, durable = true): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode });
  if (durable) {
    const fd = openSync(tmp, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  renameSync(tmp, path);
}

export function saveAgentState(dir: string, state: AgentState): void {
  writeFileAtomic(statePath(dir), JSON.stringify(state, null, 2) + "\n");
}
