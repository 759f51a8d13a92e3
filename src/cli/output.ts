import { LifelineError } from "../protocol/index.js";

export type OutputFormat = "json" | "table";

export function parseOutputFormat(value: string): OutputFormat {
  if (value === "json" || value === "table") return value;
  throw new LifelineError("USAGE", `Invalid --output "${value}": use json or table`);
}

/**
 * Agent-reported text (hostnames, OS names) is untrusted: control characters would let a
 * machine rewrite the operator's terminal, so they are shown escaped.
 */
export function safeText(value: unknown): string {
  const text = value === null || value === undefined ? "-" : String(value);
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

export function printTable(headers: readonly string[], rows: readonly (readonly unknown[])[]): void {
  const cells = [headers.map(String), ...rows.map((row) => row.map(safeText))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  for (const row of cells) process.stdout.write(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join("  ") + "\n");
}

export function printKeyValues(pairs: readonly (readonly [string, unknown])[]): void {
  const width = Math.max(...pairs.map(([k]) => k.length));
  for (const [k, v] of pairs) process.stdout.write(`${k.padEnd(width)}  ${safeText(v)}\n`);
}

export function ago(ms: number | null, now = Date.now()): string {
  if (ms === null) return "never";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function isoTime(ms: number | null): string {
  return ms === null ? "-" : new Date(ms).toISOString();
}
