import type { Op, RunEvent } from "../protocol/index.js";
import { safeText } from "./output.js";

/** Exit status of `lifeline run` for one op, as documented in docs/cli.md. */
export function exitStatusOf(op: Op): number {
  switch (op.state) {
    case "succeeded":
      return 0;
    case "timed-out":
      return 124;
    case "canceled":
      return 130;
    case "failed":
      return op.exitCode ?? 5;
    default:
      return 5;
  }
}

export function describeEnd(op: Op): string | undefined {
  const who = op.machineName;
  switch (op.state) {
    case "timed-out":
      return `${who}: timed out after ${op.timeoutMs / 1000}s; its process group was killed`;
    case "canceled":
      return `${who}: canceled`;
    case "expired":
      return `${who}: expired before the agent took it (${op.error?.message ?? "agent not connected"})`;
    case "failed":
      return op.error ? `${who}: ${op.error.message} (${op.error.code})` : undefined;
    default:
      return undefined;
  }
}

/**
 * Writes streamed output: raw bytes for a single machine (so pipes work), or `name | line`
 * prefixed lines for several, each stream line-buffered so lines of machines don't interleave.
 */
export class OutputWriter {
  private readonly partial = new Map<string, string>();
  constructor(
    private readonly names: Map<string, string>,
    private readonly prefixed: boolean,
  ) {}

  write(event: Extract<RunEvent, { type: "output" }>): void {
    const bytes = Buffer.from(event.data, "base64");
    const target = event.stream === "stdout" ? process.stdout : process.stderr;
    if (!this.prefixed) {
      target.write(bytes);
      return;
    }
    const key = `${event.opId}/${event.stream}`;
    const text = (this.partial.get(key) ?? "") + bytes.toString("utf8");
    const lines = text.split("\n");
    this.partial.set(key, lines.pop()!);
    const prefix = `${this.names.get(event.opId) ?? "?"} | `;
    for (const line of lines) target.write(prefix + safeText(line) + "\n");
  }

  flush(opId: string): void {
    for (const stream of ["stdout", "stderr"] as const) {
      const rest = this.partial.get(`${opId}/${stream}`);
      if (rest) (stream === "stdout" ? process.stdout : process.stderr).write(`${this.names.get(opId)} | ${safeText(rest)}\n`);
      this.partial.delete(`${opId}/${stream}`);
    }
  }
}
