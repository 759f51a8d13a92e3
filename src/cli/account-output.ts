import { LifelineError, Username, type Account, type VerifyResult } from "../protocol/index.js";
import { printKeyValues, safeText } from "./output.js";

export function checkUsername(user: string): string {
  const parsed = Username.safeParse(user);
  if (!parsed.success) throw new LifelineError("USAGE", `Invalid user name "${user}": ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

const day = (n: number | null) => (n === null ? "-" : n === 0 ? "0 (must change)" : new Date(n * 86_400_000).toISOString().slice(0, 10));

export function printAccount(a: Account): void {
  printKeyValues([
    ["user", a.name],
    ["uid", a.uid],
    ["kind", a.system ? `${a.kind} (system)` : a.kind],
    ["state", a.state],
    ["problems", a.problems.join(", ") || "-"],
    ["last change", day(a.lastChangeDay)],
    ["max days", a.maxDays ?? "-"],
    ["shell", a.shell],
  ]);
  for (const line of a.evidence) process.stdout.write(`  - ${safeText(line)}\n`);
}

export function verifyLine(v: VerifyResult): string {
  return `login${v.address ? ` at ${v.address}` : ""}: ${v.outcome} (${safeText(v.detail.replace(/\s+/g, " ").trim())})`;
}

/** Exit status for a verification: 0 only when a real login worked. */
export function verifyExit(v: VerifyResult): number {
  return v.outcome === "ok" ? 0 : v.outcome === "unreachable" ? 6 : 1;
}
