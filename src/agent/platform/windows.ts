/**
 * Local (and, read-mostly, domain) accounts of the Windows machine the agent runs on.
 *
 * Sources, by what each is good for:
 * - `Get-LocalUser` (Windows PowerShell 5.1's Microsoft.PowerShell.LocalAccounts) as JSON:
 *   language-independent facts: Enabled, PasswordLastSet (empty = must change at next logon),
 *   PasswordExpires, AccountExpires, PasswordRequired, the SID (its last part is the RID).
 * - `Win32_UserAccount.Lockout` (WMI/CIM), read in the same PowerShell process: the lockout
 *   state. Chosen over `net user`'s "Account active: Locked" because it does not depend on the
 *   display language. If WMI fails, the lockout state is reported as unknown in `evidence`.
 * - `net user NAME` (and `net user NAME /domain` for domain accounts): parsed by line position
 *   (the layout is the same in every language), with a table of labels and words for a few
 *   languages (see NET_USER_LOCALES) to interpret Yes/No/Locked. In an unknown language the
 *   positions still give "Password last set = <no date>", and everything else falls back to
 *   the PowerShell data.
 *
 * Changes:
 * - must-change set/clear: `net.exe user NAME /logonpasswordchg:yes|no [/domain]` (argv array).
 *   "Password never expires" is left untouched: if it prevents the flag, expire() says so.
 * - reset: `Set-LocalUser -Name $req.user -Password $secure` (or AD's `Set-ADAccountPassword
 *   -Reset` for domain accounts) in a fixed script passed with -EncodedCommand. The user name
 *   travels as JSON on stdin's first line, the password as raw UTF-8 bytes on the second; the
 *   script builds a SecureString from them char by char. The password is never in argv, the
 *   environment, or a .NET string.
 *
 * User names: validated against the protocol's `Username` grammar (letters, digits, `_ . - $`,
 * no leading `-` or `/`) before anything runs, AND never spliced into script text (stdin JSON).
 * Accounts whose names fall outside that grammar (e.g. "Invité" on French Windows) are left
 * out of list() because the protocol cannot name them.
 */
import { win32 } from "node:path";
import { LifelineError, type Account } from "../../protocol/index.js";
import { assertUsername, cleanPowerShellStderr, powerShellArgs, SCRIPTS, SpawnRunner, type CommandRunner } from "./windows-shell.js";
import { diagnoseDomain, diagnoseLocal, netUserNotFound, parseLocalUsers, parseNetUser, type LocalUserRecord, type NetUserInfo } from "./windows-output.js";

// One import path for callers and tests.
export * from "./windows-shell.js";
export * from "./windows-output.js";
export * from "./windows-run.js";

// ---------------------------------------------------------------------------------------------
// The backend

export interface WindowsAccountsOptions {
  runner?: CommandRunner;
  /** %SystemRoot%: programs are started by absolute path, never looked up in PATH. */
  systemRoot?: string;
  /** Also look for domain accounts (`net user NAME /domain`) when no local one matches. */
  domain?: boolean;
  now?: () => number;
}

export class WindowsAccounts {
  private readonly runner: CommandRunner;
  private readonly systemRoot: string;
  private readonly domain: boolean;
  private readonly now: () => number;

  constructor(options: WindowsAccountsOptions = {}) {
    this.runner = options.runner ?? new SpawnRunner();
    this.systemRoot = options.systemRoot ?? process.env.SystemRoot ?? "C:\\Windows";
    this.domain = options.domain ?? true;
    this.now = options.now ?? Date.now;
  }

  get powershellExe(): string {
    return win32.join(this.systemRoot, "System32", "WindowsPowerShell", "v1.0", "powershell.exe");
  }

  get netExe(): string {
    return win32.join(this.systemRoot, "System32", "net.exe");
  }

  private async localUsers(): Promise<LocalUserRecord[]> {
    const r = await this.runner.run(this.powershellExe, powerShellArgs(SCRIPTS.list), { timeoutMs: 120_000 });
    if (r.code !== 0) throw new LifelineError("INTERNAL", `Get-LocalUser failed: ${cleanPowerShellStderr(r.stderr) || `exit ${r.code}`}`);
    return parseLocalUsers(r.stdout);
  }

  private async netUser(user: string, domain: boolean): Promise<NetUserInfo | null> {
    const args = ["user", user, ...(domain ? ["/domain"] : [])];
    const r = await this.runner.run(this.netExe, args, { encoding: "latin1", timeoutMs: 60_000 });
    if (r.code !== 0) {
      if (netUserNotFound(r) || domain) return null;
      throw new LifelineError("INTERNAL", `net user failed for "${user}": ${r.stderr.trim() || `exit ${r.code}`}`);
    }
    return parseNetUser(r.stdout, user);
  }

  /** Local accounts (PowerShell + WMI only: no per-account net user, so one process). */
  async list(now = this.now()): Promise<Account[]> {
    return (await this.localUsers()).map((u) => diagnoseLocal(u, null, now));
  }

  /** One account: local first (with net user's view added), then the domain. */
  async get(user: string, now = this.now()): Promise<Account> {
    assertUsername(user);
    const local = (await this.localUsers()).find((u) => u.name.toLowerCase() === user.toLowerCase());
    if (local) return diagnoseLocal(local, await this.netUser(local.name, false), now);
    if (this.domain) {
      const net = await this.netUser(user, true);
      if (net) return diagnoseDomain(net, now);
    }
    throw new LifelineError("ACCOUNT_NOT_FOUND", `No local${this.domain ? " or domain" : ""} account "${user}"`);
  }

  /** The account, if it may be changed: system accounts only with allowSystem. */
  async changeable(user: string, allowSystem: boolean): Promise<Account> {
    const account = await this.get(user);
    if (account.system && !allowSystem) {
      throw new LifelineError("ACCOUNT_IS_SYSTEM", `"${user}" is a built-in Windows account (RID ${account.uid}); pass --allow-system to change it anyway`);
    }
    return account;
  }

  private async logonPasswordChg(account: Account, on: boolean): Promise<void> {
    const args = ["user", assertUsername(account.name), `/logonpasswordchg:${on ? "yes" : "no"}`, ...(account.kind === "domain" ? ["/domain"] : [])];
    const r = await this.runner.run(this.netExe, args, { encoding: "latin1", timeoutMs: 60_000 });
    if (r.code !== 0) throw new LifelineError("ACCOUNT_CHANGE_FAILED", `net user /logonpasswordchg failed for "${account.name}": ${r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`}`);
  }

  /** Sets "User must change password at next logon". */
  async expire(user: string): Promise<Account> {
    const before = await this.get(user);
    await this.logonPasswordChg(before, true);
    const after = await this.get(user);
    if (!after.problems.includes("must-change")) {
      throw new LifelineError("ACCOUNT_CHANGE_FAILED", `"${user}" still does not have to change its password after net user /logonpasswordchg:yes (is "Password never expires" set? Lifeline leaves it untouched)`);
    }
    return after;
  }

  /** Clears the must-change flag, keeping the password (Windows records "last set" = now). */
  async clearFlag(user: string): Promise<Account> {
    const before = await this.get(user);
    await this.logonPasswordChg(before, false);
    return this.get(user);
  }

  async resetPassword(user: string, password: Buffer, mustChange: boolean): Promise<Account> {
    const account = await this.get(user);
    assertUsername(account.name);
    const header = Buffer.from(`${JSON.stringify({ user: account.name, domain: account.kind === "domain" })}\n`);
    const input = Buffer.concat([header, password, Buffer.from("\n")]);
    try {
      const r = await this.runner.run(this.powershellExe, powerShellArgs(SCRIPTS.reset), { stdin: input, timeoutMs: 120_000 });
      if (r.code !== 0) throw new LifelineError("ACCOUNT_CHANGE_FAILED", `Setting the password of "${account.name}" failed: ${cleanPowerShellStderr(r.stderr) || `exit ${r.code}`}`);
    } finally {
      input.fill(0);
    }
    await this.logonPasswordChg(account, mustChange);
    return this.get(user);
  }
}

