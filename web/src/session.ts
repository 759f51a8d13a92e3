import { ApiClient } from "../../src/client/api-client.js";

/**
 * The API token lives in this tab's sessionStorage only: never in a URL, a cookie (so no CSRF)
 * or localStorage (gone when the tab closes). The console talks to its own origin.
 */
const KEY = "lifeline.token";

export function savedToken(): string | null {
  return sessionStorage.getItem(KEY);
}

export function saveToken(token: string | null): void {
  if (token) sessionStorage.setItem(KEY, token);
  else sessionStorage.removeItem(KEY);
}

export function clientFor(token: string): ApiClient {
  return new ApiClient(window.location.origin, token);
}

/** The error's one line, as the CLI shows it ("message (CODE)"). */
export function describeError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code ? `${e.message ?? ""} (${e.code})` : String(e.message ?? err);
}
