import type { Logger } from "pino";
import type { SessionEnd } from "./connection.js";

export interface Backoff {
  minMs: number;
  maxMs: number;
}

/** Capped exponential backoff with full jitter (no thundering herd after a server restart). */
export function backoffDelay(attempt: number, { minMs, maxMs }: Backoff, random = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** attempt);
  return Math.round(minMs + random() * (ceiling - minMs));
}

/** Alone owns reconnecting: runs sessions one after another until stopped. */
export async function superviseSessions(
  connect: (signal: AbortSignal) => Promise<SessionEnd>,
  log: Logger,
  signal: AbortSignal,
  backoff: Backoff = { minMs: 200, maxMs: 30_000 },
): Promise<void> {
  let attempt = 0;
  while (!signal.aborted) {
    const end = await connect(signal);
    if (signal.aborted) return;
    attempt = end.established ? 0 : attempt + 1;
    // A server that refused us on purpose will refuse again soon: wait the longest.
    const delay = end.refusedWith ? backoff.maxMs : backoffDelay(attempt, backoff);
    log.info({ delayMs: delay }, "disconnected; reconnecting");
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delay);
      signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });
  }
}
