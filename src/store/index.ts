import { SqliteStore } from "./sqlite.js";
import type { Store } from "./store.js";
export type * from "./store.js";

/** Opens the store named by a URL-ish string: `sqlite:PATH` (default) — `postgres://` comes later. */
export function openStore(location: string): Store {
  if (location.startsWith("sqlite:")) return new SqliteStore(location.slice("sqlite:".length));
  throw new Error(`unsupported store "${location}" (supported: sqlite:PATH)`);
}
