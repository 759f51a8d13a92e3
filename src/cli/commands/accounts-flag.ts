import type { Command } from "commander";
import { printAccount } from "../account-output.js";
import { DOMAIN_OPTION, resolveAccountTarget, type DomainOption } from "../account-target.js";
import { contextOf } from "../context.js";
import { printJson } from "../output.js";

/** `accounts expire`, `clear-flag` and `unlock`: one attribute of the account, the password untouched. */
export function registerAccountsFlag(accounts: Command): void {
  for (const [name, description] of [
    ["expire", "flag the account to change its password at next logon (what admins do on purpose)"],
    ["clear-flag", "drop the must-change / expired state and keep the current password (domain: pwdLastSet = -1)"],
    ["unlock", "unlock the account (local: usermod -U; domain: lockoutTime = 0)"],
  ] as const) {
    accounts
      .command(name)
      .description(description)
      .argument("<machine>", "machine name")
      .argument("<user>", "user name (LAB\\user or user@realm for a domain account)")
      .option("--allow-system", "allow a system account (uid < 1000 or root; built-in domain accounts)")
      .option(...DOMAIN_OPTION)
      .action(async (machine: string, userArg: string, opts: { allowSystem?: boolean; domain?: DomainOption }, command: Command) => {
        const { client, format } = contextOf(command);
        const target = await resolveAccountTarget(client, machine, userArg, opts.domain);
        const scope = target.realm ? { realm: target.realm } : machine;
        const call = { expire: client.expireAccount, "clear-flag": client.clearFlag, unlock: client.unlockAccount }[name];
        const { account } = await call.call(client, scope, target.user, opts.allowSystem);
        if (format === "json") return printJson(account);
        printAccount(account);
      });
  }
}
