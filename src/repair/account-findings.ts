import type { Account, AccountState } from "../protocol/index.js";

/** The order a diagnosis reports problems in, most blocking first (as the Linux diagnosis does). */
const RANK: readonly AccountState[] = ["disabled", "locked", "no-password", "must-change", "inactive", "expired"];

/**
 * What one account diagnosis found: problems with the evidence for each, and notes (evidence
 * with no problem). Shared by the diagnoses that build an Account from Windows facts (online
 * through PowerShell / net user, offline from the SAM), so both report the same way.
 */
export class AccountFindings {
  private readonly problems: AccountState[] = [];
  private readonly evidence: string[] = [];

  add(state: AccountState | null, why: string): void {
    if (state) this.problems.push(state);
    this.evidence.push(why);
  }

  /** state = the most blocking problem (or ok), problems = each once, most blocking first. */
  verdict(): Pick<Account, "state" | "problems" | "evidence"> {
    const problems = [...new Set(this.problems)].sort((a, b) => RANK.indexOf(a) - RANK.indexOf(b));
    return { state: problems[0] ?? "ok", problems, evidence: this.evidence.length ? this.evidence : ["password login is possible"] };
  }
}

/** Administrator, Guest, DefaultAccount, WDAGUtilityAccount: built in to every Windows. */
const BUILTIN_RIDS = new Set([500, 501, 503, 504]);
const FIRST_USER_RID = 1000;

/** A built-in local account (or a disabled one below the first user RID): changed only with --allow-system. */
export function isWindowsSystemAccount(rid: number, enabled: boolean): boolean {
  return BUILTIN_RIDS.has(rid) || (rid < FIRST_USER_RID && !enabled);
}
