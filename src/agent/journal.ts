import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { Id, OpResult } from "../protocol/index.js";
import { writeFileAtomic } from "./state.js";

/**
 * The agent's memory of ops, one file per op id, written before an op starts and when it ends.
 * It is what makes delivery at-most-once: a redelivered or replayed op finds its entry and gets
 * the stored result back instead of running again. Entries are kept a day past the op's own
 * expiry, after which the signature check refuses the op anyway.
 */
export const JournalEntry = z.object({
  id: Id,
  expiresAt: z.number().int(),
  receivedAt: z.number().int(),
  state: z.enum(["running", "finished"]),
  pid: z.number().int().nullable(),
  /** Start time of pid (from /proc), so a restarted agent never kills a recycled pid. */
  pidStart: z.string().nullable(),
  result: OpResult.nullable(),
});
export type JournalEntry = z.infer<typeof JournalEntry>;

const KEEP_AFTER_EXPIRY_MS = 24 * 3600_000;

export class OpJournal {
  private readonly dir: string;
  constructor(stateDir: string) {
    this.dir = join(stateDir, "ops");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  private path(id: string): string {
    if (!Id.safeParse(id).success) throw new Error("invalid op id");
    return join(this.dir, `${id}.json`);
  }

  get(id: string): JournalEntry | undefined {
    const path = this.path(id);
    if (!existsSync(path)) return undefined;
    const parsed = JournalEntry.safeParse(JSON.parse(readFileSync(path, "utf8")));
    // A damaged entry still proves the op was seen: never run it again.
    return parsed.success ? parsed.data : { id, expiresAt: Number.MAX_SAFE_INTEGER, receivedAt: 0, state: "finished", pid: null, pidStart: null, result: null };
  }

  /**
   * Only the first record of an op (written before it starts) must survive power loss: that is
   * what forbids a second run. If a later update is lost, the op still reads as "running" and a
   * restarted agent records it as interrupted, never reruns it; so those skip the fsync.
   */
  put(entry: JournalEntry, durable = true): void {
    writeFileAtomic(this.path(entry.id), JSON.stringify(entry), 0o600, durable);
  }

  entries(): JournalEntry[] {
    const out: JournalEntry[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith(".json")) continue;
      const entry = this.get(name.slice(0, -5));
      if (entry) out.push(entry);
    }
    return out;
  }

  prune(now: number): void {
    for (const entry of this.entries()) {
      if (entry.state === "finished" && entry.expiresAt + KEEP_AFTER_EXPIRY_MS < now) rmSync(this.path(entry.id), { force: true });
    }
  }
}
