import { LifelineError, LabelKey, LabelValue, type Labels } from "../protocol/index.js";

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "500ms", "2s", "1.5m", "1h" to milliseconds. A bare number means seconds. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new LifelineError("USAGE", `Invalid ${flag} "${text}": use a duration like 30s, 5m, 1h`);
  const ms = Number(match[1]) * DURATION_UNITS[match[2] ?? "s"]!;
  if (!Number.isFinite(ms) || ms <= 0) throw new LifelineError("USAGE", `Invalid ${flag} "${text}": must be more than zero`);
  return ms;
}

const BYTE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3 };

export function parseBytes(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = BYTE_UNITS[(match?.[2] ?? "").toLowerCase()];
  if (!match || unit === undefined) throw new LifelineError("USAGE", `Invalid ${flag} "${text}": use a size like 64KiB or 1MiB`);
  const bytes = Math.floor(Number(match[1]) * unit);
  if (bytes <= 0) throw new LifelineError("USAGE", `Invalid ${flag} "${text}": must be more than zero`);
  return bytes;
}

/** `k=v` pairs from repeated flags. */
export function parseLabels(pairs: readonly string[], flag: string): Labels {
  const labels: Labels = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    const key = eq > 0 ? pair.slice(0, eq) : "";
    const value = eq > 0 ? pair.slice(eq + 1) : "";
    if (!LabelKey.safeParse(key).success || !LabelValue.safeParse(value).success) {
      throw new LifelineError("USAGE", `Invalid ${flag} "${pair}": expected key=value (lowercase key; letters, digits, . _ - in the value)`);
    }
    labels[key] = value;
  }
  return labels;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
