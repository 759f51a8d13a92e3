import type { Store } from "../store/index.js";
import type { Principal } from "./auth.js";

/** Who did what to which target, and how it ended. Never pass a secret in `detail`. */
export class AuditLog {
  constructor(private readonly store: Store) {}

  async record(actor: Principal | string, action: string, target: string | null, result: string, detail: string | null = null): Promise<void> {
    const who = typeof actor === "string" ? actor : actor.label;
    await this.store.appendAudit({ at: Date.now(), actor: who, action, target, result, detail });
  }
}
