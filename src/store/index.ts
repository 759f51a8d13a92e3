import { LifelineError } from "../protocol/errors.js";
import { PostgresStore } from "./postgres.js";
import { SqliteStore } from "./sqlite.js";
import type { Store } from "./store.js";
export type * from "./store.js";

/** The location as it may be shown: a URL's credentials (user info, a password parameter) are never printed or logged. */
function redactedLocation(location: string): string {
  return location.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/?#]*@/i, "$1…@").replace(/([?&]password=)[^&#]*/gi, "$1…");
}

/**
 * Opens (and migrates) the store a location names: `sqlite:PATH` (the default), or a
 * PostgreSQL URL (`postgres://…` / `postgresql://…`; `?host=/socket/dir` for a unix socket).
 * `server`: the store of a running server, which must be the only one on a PostgreSQL database.
 */
export async function openStore(location: string, opts: { server?: boolean } = {}): Promise<Store> {
  const isPostgres = /^postgres(ql)?:\/\//.test(location);
  if (!location.startsWith("sqlite:") && !isPostgres) {
    throw new LifelineError("CONFIG_INVALID", `Unsupported store "${redactedLocation(location)}" (supported: sqlite:PATH, postgres://…)`);
  }
  try {
    return isPostgres ? await PostgresStore.open(location, opts) : new SqliteStore(location.slice("sqlite:".length));
  } catch (err) {
    throw new LifelineError("STORE_UNAVAILABLE", `Cannot open the store ${redactedLocation(location)}: ${(err as Error).message}`, { cause: err });
  }
}
