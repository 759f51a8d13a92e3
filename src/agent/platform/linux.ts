import { readFileSync } from "node:fs";
import { LifelineError, type Account } from "../../protocol/index.js";
import { dayNumber, diagnoseAll } from "../../repair/shadow.js";
import { execArgv } from "./exec.js";

/**
 * Local accounts of the Linux machine the agent runs on: read from /etc/passwd and
 * /etc/shadow, changed with the system's own PAM-aware tools (chpasswd, chage) so that the
 * hash method, PAM modules and nscd/sssd caches all see the change.
 */
export class LinuxAccounts {
  constructor(private readonly root = "/") {}

  list(now = Date.now()): Account[] {
    return diagnoseAll(readFileSync(`${this.root}etc/passwd`, "utf8"), readFileSync(`${this.root}etc/shadow`, "utf8"), now);
  }

  get(user: string, now = Date.now()): Account {
    const account = this.list(now).find((a) => a.name === user);
    if (!account) throw new LifelineError("ACCOUNT_NOT_FOUND", `No local account "${user}"`);
    return account;
  }

  /** The account, if it may be changed: system accounts only with allowSystem. */
  changeable(user: string, allowSystem: boolean): Account {
    const account = this.get(user);
    if (account.system && !allowSystem) {
      throw new LifelineError("ACCOUNT_IS_SYSTEM", `"${user}" is a system account (uid ${account.uid}); pass --allow-system to change it anyway`);
    }
    return account;
  }

  private async chage(user: string, lastDay: string): Promise<void> {
    const r = await execArgv("chage", ["-d", lastDay, "--", user]);
    if (r.code !== 0) throw new LifelineError("ACCOUNT_CHANGE_FAILED", `chage failed for "${user}": ${r.stderr.trim() || `exit ${r.code}`}`);
  }

  /** Sets the must-change flag (shadow last change = 0). */
  async expire(user: string): Promise<Account> {
    await this.chage(user, "0");
    return this.get(user);
  }

  /** Drops the must-change / expired state, keeping the password: last change = today. */
  async clearFlag(user: string): Promise<Account> {
    await this.chage(user, isoDay(Date.now()));
    return this.get(user);
  }

  /** Unlocks a password locked with `usermod -L` / `passwd -l` (the '!' before the hash). */
  async unlock(user: string): Promise<Account> {
    const r = await execArgv("usermod", ["-U", "--", user]);
    if (r.code !== 0) throw new LifelineError("ACCOUNT_CHANGE_FAILED", `usermod -U failed for "${user}": ${r.stderr.trim() || `exit ${r.code}`}`);
    return this.get(user);
  }

  async resetPassword(user: string, password: Buffer, mustChange: boolean): Promise<Account> {
    const line = Buffer.concat([Buffer.from(`${user}:`), password, Buffer.from("\n")]);
    try {
      const r = await execArgv("chpasswd", [], line);
      if (r.code !== 0) throw new LifelineError("ACCOUNT_CHANGE_FAILED", `chpasswd failed for "${user}": ${r.stderr.trim() || `exit ${r.code}`}`);
    } finally {
      line.fill(0);
    }
    await this.chage(user, mustChange ? "0" : isoDay(Date.now()));
    return this.get(user);
  }
}

const isoDay = (ms: number) => new Date(dayNumber(ms) * 86_400_000).toISOString().slice(0, 10);
